// Package doccheck holds tests that keep the documentation true: every
// relative link in README.md and docs/ must name a file or directory of
// the repository and, when it has a #fragment, a heading of that page; and
// a fenced block marked <!-- file: PATH --> must show that file as it is.
// It has no code of its own.
package doccheck
