package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	runsCompleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_analysis_runs_completed_total",
		Help: "AnalysisRuns that reached a verdict, by namespace and phase.",
	}, []string{"namespace", "phase"})
	measurementsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_analysis_measurements_total",
		Help: "Measurements taken, by namespace, metric, provider and phase.",
	}, []string{"namespace", "metric", "provider", "phase"})
	measurementSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_analysis_measurement_duration_seconds",
		Help:    "How long a Prometheus, web or kubernetes measurement took, by provider.",
		Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
	}, []string{"provider"})
)

func init() {
	metrics.Registry.MustRegister(runsCompleted, measurementsTotal, measurementSeconds)
}
