package server

import (
	"github.com/gridmap/gridmap"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	poolConnsDesc = prometheus.NewDesc("gridmap_db_pool_connections",
		"Database connections of the pool by state: in_use (held by a request or task), idle, opening.", []string{"state"}, nil)
	poolMaxDesc = prometheus.NewDesc("gridmap_db_pool_max_connections",
		"Most connections the pool opens (--db-max-conns).", nil, nil)
	poolWaitingDesc = prometheus.NewDesc("gridmap_db_pool_waiting",
		"Requests and tasks waiting for a database connection now.", nil, nil)
	poolAcquiresDesc = prometheus.NewDesc("gridmap_db_pool_acquires_total",
		"Waits for a database connection that ended, since start.", nil, nil)
	poolFailedDesc = prometheus.NewDesc("gridmap_db_pool_acquire_failures_total",
		"Waits for a database connection that ended without one (deadline passed, database unreachable).", nil, nil)
	poolWaitDesc = prometheus.NewDesc("gridmap_db_pool_wait_seconds",
		"How long getting a database connection took, failed waits included.", nil, nil)
	poolWaitMaxDesc = prometheus.NewDesc("gridmap_db_pool_wait_max_seconds",
		"The longest wait for a database connection since start.", nil, nil)
)

// poolCollector reports the database connection pool on each scrape.
type poolCollector struct{ stats func() gridmap.PoolStats }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConnsDesc, poolMaxDesc, poolWaitingDesc, poolAcquiresDesc,
		poolFailedDesc, poolWaitDesc, poolWaitMaxDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(st.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(st.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(max(0, st.Total-st.InUse-st.Idle)), "opening")
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(st.MaxConns))
	ch <- prometheus.MustNewConstMetric(poolWaitingDesc, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(poolAcquiresDesc, prometheus.CounterValue, float64(st.Acquires))
	ch <- prometheus.MustNewConstMetric(poolFailedDesc, prometheus.CounterValue, float64(st.Failed))
	buckets := make(map[float64]uint64, len(st.WaitBuckets))
	for _, b := range st.WaitBuckets {
		buckets[b.UpTo.Seconds()] = uint64(b.Count)
	}
	ch <- prometheus.MustNewConstHistogram(poolWaitDesc, uint64(st.Acquires), st.WaitTotal.Seconds(), buckets)
	ch <- prometheus.MustNewConstMetric(poolWaitMaxDesc, prometheus.GaugeValue, st.WaitMax.Seconds())
}
