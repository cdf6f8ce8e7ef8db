// goplugin-host launches a plugin binary exactly as the Nomad Autoscaler does
// (go-plugin client, magic cookie, protocol version 1, gRPC only, plugin map
// with "target"), dispenses "target" and runs a scripted sequence read as
// JSON from stdin:
//
//	{"plugin": "/path/to/binary", "steps": [
//	  {"op": "PluginInfo"},
//	  {"op": "SetConfig", "config": {"k": "v"}},
//	  {"op": "Status", "config": {...}, "timeout_ms": 2000},
//	  {"op": "Scale", "config": {...}, "action": {"count": 3, "reason": "r",
//	    "error": false, "direction": "up", "meta": {...}}},
//	  {"op": "Kill"}]}
//
// It prints one JSON line per step on stdout:
//
//	{"step": 0, "op": "PluginInfo", "ok": true, "values": {...}}
//	{"step": 1, "op": "SetConfig", "ok": false, "code": "InvalidArgument", "message": "..."}
//
// Kill reports elapsed_ms (go-plugin's Kill: Shutdown call, then up to 2 s for
// the process to exit before it SIGKILLs it) and how the process ended:
// exit_code, and signal when a signal ended it.
//
// The go-plugin client's own log goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/golang/protobuf/ptypes/any"

	base "mps/gen/autoscaler/base"
	shared "mps/gen/autoscaler/shared"
	target "mps/gen/autoscaler/target"
)

// The autoscaler's handshake (nomad-autoscaler plugins/plugin.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3",
}

type targetClient struct {
	base   base.BasePluginServiceClient
	target target.TargetPluginServiceClient
}

// targetPlugin is the host side of the "target" (and "base") plugin: gRPC only.
type targetPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (targetPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host only")
}

func (targetPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &targetClient{base: base.NewBasePluginServiceClient(c), target: target.NewTargetPluginServiceClient(c)}, nil
}

type action struct {
	Count     int64                  `json:"count"`
	Reason    string                 `json:"reason"`
	Error     bool                   `json:"error"`
	Direction string                 `json:"direction"`
	Meta      map[string]interface{} `json:"meta"`
	RawMeta   *string                `json:"raw_meta"`
}

type step struct {
	ID        int               `json:"id"`
	Async     bool              `json:"async"`
	Op        string            `json:"op"`
	Config    map[string]string `json:"config"`
	TimeoutMs int               `json:"timeout_ms"`
	// Status only: repeat (every 50 ms) until ready or this many ms passed.
	UntilReadyMs int    `json:"until_ready_ms"`
	Action       action `json:"action"`
}

type script struct {
	Plugin      string   `json:"plugin"`
	Interactive bool     `json:"interactive"`
	Args        []string `json:"args"`
	Steps       []step   `json:"steps"`
}

type result struct {
	Step    int                    `json:"step"`
	Op      string                 `json:"op"`
	Ok      bool                   `json:"ok"`
	Code    string                 `json:"code,omitempty"`
	Message string                 `json:"message,omitempty"`
	Values  map[string]interface{} `json:"values,omitempty"`
}

var emitMu sync.Mutex

// The plugin's command: after Kill its ProcessState says how it ended.
var pluginCmd *exec.Cmd

// How the plugin process ended, once go-plugin has reaped it: by itself
// (exit_code) or by a signal (signal: "killed" is go-plugin's SIGKILL after
// its 2 s of patience).
func exitValues(values map[string]interface{}) {
	ps := pluginCmd.ProcessState
	if ps == nil {
		values["reaped"] = false
		return
	}
	values["reaped"] = true
	values["exit_code"] = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		values["signal"] = ws.Signal().String()
	}
}

func emit(r result) {
	b, _ := json.Marshal(r)
	emitMu.Lock()
	defer emitMu.Unlock()
	fmt.Println(string(b))
}

func fail(r result, err error) result {
	r.Ok = false
	if s, ok := status.FromError(err); ok {
		r.Code = s.Code().String()
		r.Message = s.Message()
	} else {
		r.Code = "HostError"
		r.Message = err.Error()
	}
	return r
}

var directions = map[string]shared.ScalingDirection{
	"unspecified": shared.ScalingDirection_SCALING_DIRECTION_UNSPECIFIED,
	"none":        shared.ScalingDirection_SCALING_DIRECTION_NONE,
	"down":        shared.ScalingDirection_SCALING_DIRECTION_DOWN,
	"up":          shared.ScalingDirection_SCALING_DIRECTION_UP,
}

func main() {
	var s script
	stdin := json.NewDecoder(os.Stdin)
	if err := stdin.Decode(&s); err != nil {
		fmt.Fprintf(os.Stderr, "bad script: %v\n", err)
		os.Exit(2)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Trace, Output: os.Stderr})
	pluginCmd = exec.Command(s.Plugin, s.Args...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          map[string]plugin.Plugin{"base": targetPlugin{}, "target": targetPlugin{}},
		Cmd:              pluginCmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger.ResetNamed("external_plugin"),
	})
	defer client.Kill()

	start := time.Now()
	rpc, err := client.Client()
	if err != nil {
		emit(fail(result{Step: -1, Op: "Start"}, err))
		os.Exit(1)
	}
	raw, err := rpc.Dispense("target")
	if err != nil {
		emit(fail(result{Step: -1, Op: "Dispense"}, err))
		os.Exit(1)
	}
	emit(result{Step: -1, Op: "Start", Ok: true, Values: map[string]interface{}{
		"protocol": string(client.Protocol()), "network": client.ReattachConfig().Addr.Network(),
		"address": client.ReattachConfig().Addr.String(), "start_ms": time.Since(start).Milliseconds(),
		"pid": client.ReattachConfig().Pid}})
	tc := raw.(*targetClient)

	if !s.Interactive {
		for i, st := range s.Steps {
			r := runStep(client, rpc, tc, i, st)
			emit(r)
		}
		return
	}
	// Interactive: one step per stdin line, {"id": n, "async": bool, "op": ...};
	// async steps run concurrently and report when they finish.
	var wg sync.WaitGroup
	for {
		var st step
		if err := stdin.Decode(&st); err != nil {
			break
		}
		if st.Async {
			wg.Add(1)
			go func(st step) {
				defer wg.Done()
				emit(runStep(client, rpc, tc, st.ID, st))
			}(st)
			continue
		}
		emit(runStep(client, rpc, tc, st.ID, st))
	}
	wg.Wait()
}

func runStep(client *plugin.Client, rpc plugin.ClientProtocol, tc *targetClient, i int, st step) result {
	r := result{Step: i, Op: st.Op, Ok: true}
	ctx := context.Background()
	cancel := func() {}
	if st.TimeoutMs > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(st.TimeoutMs)*time.Millisecond)
	}
	defer cancel()
	switch st.Op {
	case "PluginInfo":
		resp, err := tc.base.PluginInfo(ctx, &base.PluginInfoRequest{})
		if err != nil {
			r = fail(r, err)
		} else {
			r.Values = map[string]interface{}{"name": resp.Name, "type": resp.Type.String()}
		}
	case "SetConfig":
		if _, err := tc.base.SetConfig(ctx, &base.SetConfigRequest{Config: st.Config}); err != nil {
			r = fail(r, err)
		}
	case "Status":
		resp, err := tc.target.Status(ctx, &target.StatusRequest{Config: st.Config})
		for give := time.Now().Add(time.Duration(st.UntilReadyMs) * time.Millisecond); err == nil && !resp.Ready && time.Now().Before(give); {
			time.Sleep(50 * time.Millisecond)
			resp, err = tc.target.Status(context.Background(), &target.StatusRequest{Config: st.Config})
		}
		if err != nil {
			r = fail(r, err)
		} else {
			r.Values = map[string]interface{}{"ready": resp.Ready, "count": resp.Count, "meta": resp.Meta}
		}
	case "Scale":
		dir, known := directions[st.Action.Direction]
		if !known {
			dir = shared.ScalingDirection_SCALING_DIRECTION_UNSPECIFIED
		}
		a := &shared.ScalingAction{Count: st.Action.Count, Reason: st.Action.Reason,
			Error: st.Action.Error, Direction: dir}
		// As the SDK does: an Any with no type URL holding the JSON object.
		if st.Action.RawMeta != nil {
			a.Meta = &any.Any{Value: []byte(*st.Action.RawMeta)}
		} else if st.Action.Meta != nil {
			b, _ := json.Marshal(st.Action.Meta)
			a.Meta = &any.Any{Value: b}
		}
		if _, err := tc.target.Scale(ctx, &target.ScaleRequest{Action: a, Config: st.Config}); err != nil {
			r = fail(r, err)
		}
	case "Ping":
		if err := rpc.Ping(); err != nil {
			r = fail(r, err)
		}
	case "Kill":
		t := time.Now()
		client.Kill()
		r.Values = map[string]interface{}{"exited": client.Exited(), "elapsed_ms": time.Since(t).Milliseconds()}
		exitValues(r.Values)
	default:
		r = fail(r, fmt.Errorf("unknown op %q", st.Op))
	}
	return r
}
