package ipc

// The go-plugin handshake of the stage protocol (see README.md). The host sets
// MagicCookieKey=MagicCookieValue in the plugin's environment; the plugin announces ProtocolMajor
// as go-plugin's application protocol version and serves the Stage service under PluginName.
const (
	MagicCookieKey   = "TROUPE_PLUGIN_MAGIC_COOKIE"
	MagicCookieValue = "d3c1b8a0-troupe-stage-plugin"
	PluginName       = "stage"
)
