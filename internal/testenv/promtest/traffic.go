package promtest

import (
	"context"
	"math"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// ErrorRatioAnnotation on a pod (in a Deployment's pod template, so a commit
// decides it) is the share of its simulated requests that fail with a 500,
// from "0" to "1". Pods without it answer every request with a 200.
const ErrorRatioAnnotation = "promtest.strata.dev/error-ratio"

// RequestsPerScrape is how many requests each Ready pod serves between two
// scrapes.
const RequestsPerScrape = 100

// PodTraffic stands in for the metrics a real application would export:
// at every scrape, each Ready pod that list returns has served
// RequestsPerScrape more requests, of which the share its
// ErrorRatioAnnotation says failed. The counter is
//
//	http_requests_total{namespace, pod, pod_template_hash, version, code}
//
// (version from the pod's app.kubernetes.io/version label), so a query can
// tell a Deployment's versions apart by their pod-template hash, as analysis
// of a canary does. Pods that are not Ready serve nothing, as behind a real
// Service. Register it on a Target with Traffic.
type PodTraffic struct {
	list func(context.Context) ([]corev1.Pod, error)
	desc *prometheus.Desc

	mu     sync.Mutex
	served map[string]*podCount // by pod UID
}

type podCount struct{ ok, failed float64 }

// Traffic registers simulated per-pod request counters on the target; list
// returns the pods to serve for (a client's List, typically) and is called
// at every scrape.
func (tg *Target) Traffic(list func(context.Context) ([]corev1.Pod, error)) *PodTraffic {
	p := &PodTraffic{
		list:   list,
		desc:   prometheus.NewDesc("http_requests_total", "Requests served per pod and code (simulated by the test).", []string{"namespace", "pod", "pod_template_hash", "version", "code"}, nil),
		served: map[string]*podCount{},
	}
	tg.Registry.MustRegister(p)
	return p
}

// Describe implements prometheus.Collector.
func (p *PodTraffic) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

// Collect implements prometheus.Collector: one scrape, one round of requests.
func (p *PodTraffic) Collect(ch chan<- prometheus.Metric) {
	pods, err := p.list(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(p.desc, err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range pods {
		pod := &pods[i]
		c := p.served[string(pod.UID)]
		if ready(pod) {
			if c == nil {
				c = &podCount{}
				p.served[string(pod.UID)] = c
			}
			failed := math.Round(RequestsPerScrape * errorRatio(pod))
			c.failed += failed
			c.ok += RequestsPerScrape - failed
		}
		if c == nil {
			continue
		}
		labels := []string{pod.Namespace, pod.Name, pod.Labels["pod-template-hash"], pod.Labels["app.kubernetes.io/version"]}
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, c.ok, append(labels, "200")...)
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.CounterValue, c.failed, append(labels, "500")...)
	}
}

func ready(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func errorRatio(p *corev1.Pod) float64 {
	v, err := strconv.ParseFloat(p.Annotations[ErrorRatioAnnotation], 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0
	}
	return math.Min(v, 1)
}
