//go:build !linux

package sdk

// killDescendants kills nothing here: only Linux has subreapers and /proc. The host's process
// group kill still reaches the plugin's children that stay in its group.
func killDescendants() {}
