// Package doccheck holds a test that keeps the documentation's links true:
// every relative link in README.md and docs/ must name a file or directory of
// the repository and, when it has a #fragment, a heading of that page. It
// has no code of its own.
package doccheck
