// Package manage is mixmatch-manage: schema migrations, the sample configuration and
// the operator's view of the mapping table.
package manage

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mixmatch/app/cmdline"
	"mixmatch/app/config"
	"mixmatch/app/services"
	"mixmatch/app/store"
)

const usage = `usage: mixmatch-manage [--config-file PATH] COMMAND [ARGS]

commands:
  db_sync                              create or upgrade the database schema
  db_version                           print the schema version
  check-config                         validate the configuration and print its warnings
  config-sample                        print etc/mixmatch.conf.sample
  mappings list [--sp S] [--type T] [--project P] [--limit N]
  mappings show TYPE ID
  mappings add TYPE ID SP PROJECT      record (or move) a resource
  mappings delete TYPE ID

mappings commands take --format table|json (default table).
`

// Run is the whole of mixmatch-manage.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var configFile string
	fs := cmdline.NewFlagSet("mixmatch-manage", stderr, &configFile)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return cmdline.Usagef("no command given")
	}
	m := &manager{configFile: configFile, stdout: stdout, stderr: stderr}
	switch cmd, rest := rest[0], rest[1:]; cmd {
	case "config-sample":
		if len(rest) > 0 {
			return cmdline.Usagef("config-sample takes no arguments")
		}
		_, err := io.WriteString(stdout, config.Sample())
		return err
	case "check-config":
		return m.checkConfig(rest)
	case "db_sync", "db-sync":
		return m.dbSync(ctx, rest)
	case "db_version", "db-version":
		return m.dbVersion(ctx, rest)
	case "mappings":
		return m.mappings(ctx, rest)
	default:
		return cmdline.Usagef("unknown command %q (try --help)", cmd)
	}
}

type manager struct {
	configFile     string
	stdout, stderr io.Writer
	cfg            *config.Config
}

// flags parses a command's own flags; --config-file may also follow the command, as
// oslo.config allows.
func (m *manager) flags(name string, args []string, define func(*flag.FlagSet)) ([]string, error) {
	fs := cmdline.NewFlagSet("mixmatch-manage "+name, m.stderr, &m.configFile)
	if define != nil {
		define(fs)
	}
	// Flags may come after positional arguments too: "mappings show images ID --format json".
	var positional []string
	for {
		if err := cmdline.Parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (m *manager) noArgs(name string, args []string) error {
	rest, err := m.flags(name, args, nil)
	if err == nil && len(rest) > 0 {
		err = cmdline.Usagef("%s takes no arguments", name)
	}
	return err
}

func (m *manager) load() error {
	cfg, _, err := cmdline.LoadConfig(m.configFile, m.stderr)
	m.cfg = cfg
	return err
}

func (m *manager) open(ctx context.Context) (*store.Store, error) {
	if m.cfg == nil {
		if err := m.load(); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, m.cfg.Database.Connection, store.Options{MaxOpenConns: m.cfg.Database.MaxPoolSize})
}

func (m *manager) checkConfig(args []string) error {
	if err := m.noArgs("check-config", args); err != nil {
		return err
	}
	if err := m.load(); err != nil {
		return err
	}
	source := m.cfg.File
	if source == "" {
		source = "built-in defaults"
	}
	fmt.Fprintf(m.stdout, "%s: valid, %d service provider(s): %s\n", source, len(m.cfg.SPs), strings.Join(m.cfg.ServiceProviders, ", "))
	return nil
}

func (m *manager) dbSync(ctx context.Context, args []string) error {
	if err := m.noArgs("db_sync", args); err != nil {
		return err
	}
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	applied, err := s.Migrate(ctx, nil)
	for _, a := range applied {
		fmt.Fprintf(m.stdout, "applied %s\n", a.Name)
	}
	if err != nil {
		return err
	}
	current, _, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "database schema at version %d\n", current)
	return nil
}

func (m *manager) dbVersion(ctx context.Context, args []string) error {
	if err := m.noArgs("db_version", args); err != nil {
		return err
	}
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	current, newest, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.stdout, "current %d\nnewest %d\n", current, newest)
	return nil
}

func (m *manager) mappings(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return cmdline.Usagef("mappings needs a subcommand: list, show, add or delete")
	}
	sub, args := args[0], args[1:]
	var format string
	var filter store.Filter
	define := func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "table", "output format: table or json")
		if sub == "list" {
			fs.StringVar(&filter.SP, "sp", "", "only this service provider")
			fs.StringVar(&filter.Type, "type", "", "only this resource type")
			fs.StringVar(&filter.Project, "project", "", "only this project id")
			fs.IntVar(&filter.Limit, "limit", 0, "at most this many rows")
		}
	}
	want := map[string]int{"list": 0, "show": 2, "add": 4, "delete": 2}
	n, ok := want[sub]
	if !ok {
		return cmdline.Usagef("unknown mappings subcommand %q (list, show, add, delete)", sub)
	}
	pos, err := m.flags("mappings "+sub, args, define)
	if err != nil {
		return err
	}
	if len(pos) != n {
		return cmdline.Usagef("mappings %s takes %d argument(s), got %d: see --help", sub, n, len(pos))
	}
	if format != "table" && format != "json" {
		return cmdline.Usagef("--format must be table or json, not %q", format)
	}
	if filter.Limit < 0 {
		return cmdline.Usagef("--limit must not be negative")
	}
	if sub == "add" {
		if err := m.load(); err != nil {
			return err
		}
		if err := m.checkNewMapping(pos[0], pos[2]); err != nil {
			return err
		}
	}
	s, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.CheckSchema(ctx); err != nil {
		return err
	}
	out := output{w: m.stdout, json: format == "json"}
	switch sub {
	case "list":
		rows, err := s.List(ctx, filter)
		if err != nil {
			return err
		}
		return out.rows(rows)
	case "show":
		row, err := s.Find(ctx, pos[0], pos[1])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no mapping for %s %s", pos[0], pos[1])
		}
		if err != nil {
			return err
		}
		return out.row(row)
	case "add":
		err := s.Upsert(ctx, store.Mapping{ResourceType: pos[0], ResourceID: pos[1], ResourceSP: pos[2], ProjectID: pos[3]})
		if errors.Is(err, store.ErrInvalid) {
			return cmdline.Usagef("%v", err)
		}
		if err != nil {
			return err
		}
		row, err := s.Find(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		return out.row(row)
	default: // delete
		found, err := s.Delete(ctx, pos[0], pos[1])
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("no mapping for %s %s", pos[0], pos[1])
		}
		fmt.Fprintf(m.stderr, "deleted the mapping of %s %s\n", pos[0], store.NormalizeID(pos[1]))
		return nil
	}
}

// checkNewMapping refuses what the proxy could never route, a typo most of the time.
func (m *manager) checkNewMapping(resourceType, sp string) error {
	if !services.IsMapped(resourceType) {
		return cmdline.Usagef("unknown resource type %q (known: %s)", resourceType, strings.Join(services.MappedTypes(), ", "))
	}
	if _, ok := m.cfg.SP(sp); !ok {
		return cmdline.Usagef("service provider %q is not in [DEFAULT] service_providers (%s)", sp, strings.Join(m.cfg.ServiceProviders, ", "))
	}
	return nil
}

type output struct {
	w    io.Writer
	json bool
}

func (o output) row(m store.Mapping) error {
	if o.json {
		return o.encode(m)
	}
	return o.table([]store.Mapping{m})
}

func (o output) rows(ms []store.Mapping) error {
	if o.json {
		return o.encode(ms)
	}
	return o.table(ms)
}

func (o output) encode(v any) error {
	enc := json.NewEncoder(o.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (o output) table(ms []store.Mapping) error {
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tRESOURCE ID\tSP\tPROJECT\tUPDATED")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ResourceType, m.ResourceID, m.ResourceSP, m.ProjectID,
			m.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
