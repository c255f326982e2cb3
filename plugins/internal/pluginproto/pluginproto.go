// Package pluginproto binds the stage protocol's gRPC service (ipc.StageServer/StageClient) to
// go-plugin, for both the host (package plugins) and the Go SDK (package plugins/sdk).
package pluginproto

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/troupe-dev/troupe/ipc"
)

// Handshake is go-plugin's handshake for a given protocol major version.
func Handshake(major uint) plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  major,
		MagicCookieKey:   ipc.MagicCookieKey,
		MagicCookieValue: ipc.MagicCookieValue,
	}
}

// Plugin is the go-plugin plugin for the Stage service: on the plugin side it serves Impl, on
// the host side it dispenses an ipc.StageClient.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl ipc.StageServer
	// OnServe, if set, is called with the gRPC server once it is registered (plugin side).
	OnServe func(*grpc.Server)
}

// GRPCServer registers the Stage service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	ipc.RegisterStageServer(s, p.Impl)
	if p.OnServe != nil {
		p.OnServe(s)
	}
	return nil
}

// GRPCClient returns an ipc.StageClient on the plugin's connection.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return ipc.NewStageClient(c), nil
}

// Set is the plugin set both sides register.
func Set(p *Plugin) plugin.PluginSet { return plugin.PluginSet{ipc.PluginName: p} }
