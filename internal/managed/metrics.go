package managed

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	metricReconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_managed_reconciles_total",
		Help: "Reconciles of managed resources, by kind.",
	}, []string{"kind"})
	metricExternalCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_managed_external_calls_total",
		Help: "Calls to external systems, by kind, operation (connect, observe, create, update, delete) and result (success, error).",
	}, []string{"kind", "operation", "result"})
	metricErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_managed_reconcile_errors_total",
		Help: "Reconciles of managed resources that ended in an error, by kind.",
	}, []string{"kind"})
	metricTimeToReady = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_managed_time_to_ready_seconds",
		Help:    "Time from a managed resource's creation to its first Ready=True, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
	}, []string{"kind"})
)

func init() {
	metrics.Registry.MustRegister(metricReconciles, metricExternalCalls, metricErrors, metricTimeToReady)
}

func countCall(kind, op string, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	metricExternalCalls.WithLabelValues(kind, op, result).Inc()
}
