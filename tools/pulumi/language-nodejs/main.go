// pulumi-language-nodejs: Swarmform's own Node.js language host for the Pulumi CLI.
//
// Why this exists: the upstream language host module
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not served by the Go module proxy
// that this project's machines reach; every version answers
// "403 Forbidden ... This module version is not available." The CLI itself (pkg/v3) is served, and it
// needs a language host to run a Node.js program. This file is that host, written against the gRPC API of
// sdk/v3 (pulumirpc.LanguageRuntimeServer). It is a launcher, not an engine: the engine stays the real
// `pulumi` CLI, and the program runs under the real Node.js SDK (@pulumi/pulumi's cmd/run).
//
// What it implements (what `pulumi preview/up/refresh/destroy` call):
//   - Handshake, GetPluginInfo;
//   - GetRequiredPackages: the resource plugins that the program's dependencies (package.json, followed
//     transitively through node_modules) declare with `pulumi.resource: true` in their package.json;
//   - Run: spawns `node <@pulumi/pulumi/cmd/run> --monitor ... <program>` with the flags and the
//     PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS / PULUMI_NODEJS_TYPESCRIPT / PULUMI_NODEJS_TSCONFIG_PATH
//     environment that cmd/run reads, and returns its failure;
//   - InstallDependencies: a no-op that says so (dependencies are installed with `npm ci`).
//
// Everything else (code generation, templates, `pulumi about` details) answers Unimplemented.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is set at build time (-X main.version=...) to the @pulumi/pulumi version it serves.
var version = "0.0.0-dev"

// exitLoggedError is the exit code with which @pulumi/pulumi's cmd/run says it has already reported the error
// to the user (nodeJSProcessExitedAfterLoggingUserActionableMessage): the engine must then bail quietly.
const exitLoggedError = 32

func main() {
	// The engine runs `pulumi-language-nodejs [--logtostderr] [-v=N] [--tracing URL] <engine address>`.
	flags := flag.NewFlagSet("pulumi-language-nodejs", flag.ContinueOnError)
	_ = flags.Bool("logtostderr", false, "accepted for compatibility; logs go to stderr")
	_ = flags.Int("v", 0, "accepted for compatibility")
	tracing := flags.String("tracing", "", "Zipkin-compatible tracing endpoint, passed on to the program")
	if err := flags.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	engineAddress := ""
	if flags.NArg() > 0 {
		engineAddress = flags.Arg(flags.NArg() - 1)
	}

	host := &nodeHost{engineAddress: engineAddress, tracing: *tracing}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
	// The plugin protocol: the first line on stdout is the port the gRPC server listens on.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}

type nodeHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	tracing       string
}

func (h *nodeHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *nodeHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *nodeHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	msg := fmt.Sprintf("swarmform's pulumi-language-nodejs does not install dependencies: run `npm ci` in %s\n",
		req.GetDirectory())
	return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: []byte(msg)})
}

// options are the runtime options of Pulumi.yaml (`runtime: { name: nodejs, options: {...} }`).
type options struct {
	typescript   bool
	tsconfigPath string
	nodeArgs     []string
}

func optionsOf(info *pulumirpc.ProgramInfo) options {
	o := options{typescript: true}
	if info == nil || info.GetOptions() == nil {
		return o
	}
	m := info.GetOptions().AsMap()
	if v, ok := m["typescript"].(bool); ok {
		o.typescript = v
	}
	if v, ok := m["tsconfig"].(string); ok {
		o.tsconfigPath = v
	}
	if v, ok := m["nodeargs"].(string); ok && strings.TrimSpace(v) != "" {
		o.nodeArgs = strings.Fields(v)
	}
	return o
}

// programDirOf is where the program lives: ProgramInfo's program directory, else the deprecated pwd.
func programDirOf(info *pulumirpc.ProgramInfo, pwd string) string {
	if info != nil && info.GetProgramDirectory() != "" {
		return info.GetProgramDirectory()
	}
	return pwd
}

// packageRootOf is the nearest directory at or above dir holding a package.json.
func packageRootOf(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "package.json")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no package.json found in %s or any parent directory", dir)
		}
	}
}

type packageJSON struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	Pulumi          struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

func readPackageJSON(dir string) (*packageJSON, error) {
	text, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, err
	}
	var p packageJSON
	if err := json.Unmarshal(text, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "package.json"), err)
	}
	return &p, nil
}

// resolvePackage finds the folder of package `name` as node's require would from `from`: the nearest
// node_modules/<name> at or above it. "" when it is not installed.
func resolvePackage(from, name string) string {
	for d := from; ; d = filepath.Dir(d) {
		candidate := filepath.Join(d, "node_modules", filepath.FromSlash(name))
		if _, err := os.Stat(filepath.Join(candidate, "package.json")); err == nil {
			return candidate
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// requiredPackages lists the resource plugins that the program's package (root/package.json: dependencies and
// devDependencies) and their dependencies, transitively, declare with `pulumi.resource: true`.
func requiredPackages(root string) ([]*pulumirpc.PackageDependency, error) {
	found := map[string]*pulumirpc.PackageDependency{}
	seen := map[string]bool{}
	var visit func(dir string, p *packageJSON, top bool) error
	visit = func(dir string, p *packageJSON, top bool) error {
		if p.Pulumi.Resource {
			name := p.Pulumi.Name
			if name == "" {
				name = strings.TrimPrefix(p.Name, "@pulumi/")
			}
			v := p.Pulumi.Version
			if v == "" {
				v = p.Version
			}
			found[name+"@"+v] = &pulumirpc.PackageDependency{
				Kind: "resource", Name: name, Version: v, Server: p.Pulumi.Server,
			}
		}
		deps := []string{}
		for d := range p.Dependencies {
			deps = append(deps, d)
		}
		if top {
			for d := range p.DevDependencies {
				deps = append(deps, d)
			}
		}
		for _, name := range deps {
			depDir := resolvePackage(dir, name)
			if depDir == "" {
				continue // not installed (optional, or npm ci not run): node reports it if the program needs it
			}
			real, err := filepath.EvalSymlinks(depDir)
			if err != nil {
				return err
			}
			if seen[real] {
				continue
			}
			seen[real] = true
			dp, err := readPackageJSON(depDir)
			if err != nil {
				return err
			}
			if err := visit(depDir, dp, false); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := readPackageJSON(root)
	if err != nil {
		return nil, err
	}
	if err := visit(root, p, true); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*pulumirpc.PackageDependency, 0, len(keys))
	for _, k := range keys {
		out = append(out, found[k])
	}
	return out, nil
}

func (h *nodeHost) GetRequiredPackages(
	_ context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	root, err := packageRootOf(programDirOf(req.GetInfo(), ""))
	if err != nil {
		return nil, err
	}
	pkgs, err := requiredPackages(root)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: pkgs}, nil
}

// locateRunModule resolves @pulumi/pulumi/cmd/run from the program directory, as node would.
func locateRunModule(programDir string) (string, error) {
	cmd := exec.Command("node", "-e", "console.log(require.resolve('@pulumi/pulumi/cmd/run'))")
	cmd.Dir = programDir
	out, err := cmd.Output()
	if err != nil {
		detail := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			detail = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("cannot find @pulumi/pulumi from %s (run `npm ci`): %v %s", programDir, err, detail)
	}
	return strings.TrimSpace(string(out)), nil
}

// runArgs are the node arguments for cmd/run (its flags are documented in @pulumi/pulumi/cmd/run/index.js).
func (h *nodeHost) runArgs(req *pulumirpc.RunRequest, runPath string, o options) []string {
	args := append([]string{}, o.nodeArgs...)
	args = append(args, runPath)
	flag := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k+"="+v)
		}
	}
	flag("monitor", req.GetMonitorAddress())
	flag("engine", h.engineAddress)
	flag("organization", req.GetOrganization())
	flag("project", req.GetProject())
	flag("stack", req.GetStack())
	flag("pwd", req.GetPwd())
	if info := req.GetInfo(); info != nil {
		flag("root-directory", info.GetRootDirectory())
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetParallel() > 1 {
		flag("parallel", fmt.Sprint(req.GetParallel()))
	}
	flag("tracing", h.tracing)
	program := req.GetProgram()
	if info := req.GetInfo(); info != nil && info.GetEntryPoint() != "" {
		program = info.GetEntryPoint()
	}
	if program == "" {
		program = "."
	}
	args = append(args, program)
	return append(args, req.GetArgs()...)
}

func (h *nodeHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	o := optionsOf(req.GetInfo())
	programDir := programDirOf(req.GetInfo(), req.GetPwd())
	runPath, err := locateRunModule(programDir)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON),
	)
	if o.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if o.tsconfigPath != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+o.tsconfigPath)
	}

	cmd := exec.CommandContext(ctx, "node", h.runArgs(req, runPath, o)...)
	cmd.Dir = req.GetPwd()
	cmd.Env = env
	// The engine shows what the language host prints (after its port line) to the user.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &ee) && ee.ExitCode() == exitLoggedError:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &ee):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", ee.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("failed to run node: %v", err)}, nil
	}
}
