// goplugin-minimal-target is the smallest Nomad Autoscaler target plugin that
// HashiCorp's go-plugin (Debian's 1.0.1) can serve, with the autoscaler's
// handshake and plugin set ("base" and "target", gRPC only): the baseline of
// bench/startup_bench. It answers PluginInfo; SetConfig accepts anything;
// Status and Scale are unimplemented.
package main

import (
	"context"
	"errors"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	base "mps/gen/autoscaler/base"
	target "mps/gen/autoscaler/target"
)

// The autoscaler's handshake (nomad-autoscaler plugins/plugin.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3",
}

type baseServer struct {
	base.UnimplementedBasePluginServiceServer
}

func (baseServer) PluginInfo(context.Context, *base.PluginInfoRequest) (*base.PluginInfoResponse, error) {
	return &base.PluginInfoResponse{Name: "minimal-target", Type: base.PluginType_PLUGIN_TYPE_TARGET}, nil
}

func (baseServer) SetConfig(context.Context, *base.SetConfigRequest) (*base.SetConfigResponse, error) {
	return &base.SetConfigResponse{}, nil
}

type targetServer struct {
	target.UnimplementedTargetPluginServiceServer
}

// The plugin side of "base" and "target": each registers its own service.
type basePlugin struct{ plugin.NetRPCUnsupportedPlugin }
type targetPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (basePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	base.RegisterBasePluginServiceServer(s, baseServer{})
	return nil
}

func (basePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("plugin side only")
}

func (targetPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	target.RegisterTargetPluginServiceServer(s, targetServer{})
	return nil
}

func (targetPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("plugin side only")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         map[string]plugin.Plugin{"base": basePlugin{}, "target": targetPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
