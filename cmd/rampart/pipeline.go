package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-edge/rampart/flowtable"
	"github.com/rampart-edge/rampart/pipeline"
	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/stages/identity"
	"github.com/rampart-edge/rampart/stages/origin"
	"github.com/rampart-edge/rampart/stages/zone"
)

// edgePipeline is the HTTP side of the edge: the engine, its stages and
// the zone health checker.
type edgePipeline struct {
	cfg      pipeline.Config
	engine   *pipeline.Engine
	identity *identity.Stage
	checker  *zone.Checker
	log      *slog.Logger
}

func startPipeline(spec *profiles.Spec, tables *flowtable.Tables, reg prometheus.Registerer, log *slog.Logger) (*edgePipeline, error) {
	cfg := *spec.Pipeline
	table, err := zone.NewTable(spec.Zones)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	loops := cfg.Loops
	if loops == 0 {
		loops = runtime.NumCPU()
	}
	id := identity.New(table)
	var tableRef = func() *zone.Table { return id.Table() }
	if reg != nil {
		reg.MustRegister(zone.NewCollector(tableRef))
	}
	org, err := origin.New(origin.Options{Loops: loops, Limits: cfg.Limits(), Via: "rampart",
		Logger: log, Metrics: origin.NewMetrics(reg)})
	if err != nil {
		return nil, err
	}
	opts := pipeline.Options{Config: cfg, Stages: []pipeline.Stage{id, org}, Logger: log,
		Metrics: pipeline.NewMetrics(reg), Via: "rampart"}
	if tables != nil {
		opts.Flows, opts.Visitors = tables.Flows, tables.Visitors
	}
	eng, err := pipeline.New(opts)
	if err != nil {
		return nil, err
	}
	if err := eng.Start(); err != nil {
		return nil, err
	}
	p := &edgePipeline{cfg: cfg, engine: eng, identity: id, log: log}
	p.checker = zone.NewChecker(table, log)
	p.checker.Start(context.Background())
	log.Info("pipeline serving", "listeners", cfg.Listeners, "loops", loops, "steering", cfg.Steering,
		"zones", len(table.Zones()), "hosts", table.Hosts())
	return p, nil
}

// checkReload says whether next can be applied without a restart.
func (p *edgePipeline) checkReload(next *profiles.Spec) error {
	if next.Pipeline == nil || !reflect.DeepEqual(*next.Pipeline, p.cfg) {
		return errors.New("pipeline section changes need a restart (listeners and loops are bound at start)")
	}
	_, err := zone.NewTable(next.Zones)
	return err
}

// reload swaps in next's zones; origin health carries over.
func (p *edgePipeline) reload(next *profiles.Spec) error {
	table, err := zone.NewTable(next.Zones)
	if err != nil {
		return err
	}
	table.CopyHealth(p.identity.Table())
	p.checker.Stop()
	p.identity.Swap(table)
	p.checker = zone.NewChecker(table, p.log)
	p.checker.Start(context.Background())
	return nil
}

func (p *edgePipeline) shutdown(ctx context.Context) error {
	p.checker.Stop()
	return p.engine.Shutdown(ctx)
}
