// Package bench owns samsa's bundled benchmark: the produce, consume,
// end-to-end latency and mixed workloads (driven by franz-go's kgo client),
// their statistics, the broker process metrics read from /proc, the brokers
// the benchmark starts itself (samsa, franz-go's kfake as a peer, and a hot
// standby pair of samsa processes for the failover workload), the
// hostile workload's raw-socket attackers, and the human and JSON reports.
//
// Every workload is bounded by a record count or a duration and by a time
// limit, and every goroutine it starts is owned by the workload and waited
// for before it returns.
package bench
