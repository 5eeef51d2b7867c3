// Package deploy holds the tests of Parley's deployment files: the
// Kubernetes kustomizations under kubernetes/, rendered with the kustomize
// API and decoded strictly into the Kubernetes API types. It is a module of
// its own so that the Kubernetes libraries stay out of Parley's build.
package deploy
