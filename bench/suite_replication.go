package main

// Suite replication: weft's replicated commits over a network, beside
// servers that do a comparable job. The peer rows live in
// suite_replication_peers.go, the weft rows (a weft server in process,
// clients of package client over loopback TCP) in
// suite_replication_weft.go.

// Peer systems of the replication suite (weft is sysWeft).
const (
	sysTCPEcho = "tcp-echo"
	sysRedis   = "redis"
	sysNATS    = "nats"
)

// Sizes of the replication workloads.
const (
	replClients   = 8    // clients of the -8c cases, subscribers of fanout
	replKeys      = 1000 // keys of rmw-8c
	chainWindow   = 1000 // writes in flight in commit-chained (one op)
	fanoutWindow  = 1000 // messages the publisher may run ahead of the slowest subscriber
	rttFrameBytes = 64   // frame echoed by tcp-echo
)

// weftRow is the weft row of a case.
func weftRow(note string, setup func() (*Instance, error)) Row {
	return Row{System: sysWeft, Note: note, Setup: setup}
}

func replicationSuite() *Suite {
	return &Suite{
		Name:      "replication",
		Doc:       "replicated commits over loopback TCP, beside servers doing a comparable job",
		Reference: sysWeft,
		Cases: []Case{
			{
				Name: "commit-rtt",
				Doc:  "one client, one commit at a time (each waits for its acknowledgement)",
				Unit: "round trips/s",
				Rows: []Row{
					weftRow("in-process weft server, one client: Atomically reads and increments one Cell's value, commits and waits for the ack",
						weftCommitRTT),
					{System: sysTCPEcho, Note: "bare loopback TCP echo server, one client, 64-byte frame per round trip: the floor of any round trip",
						Setup: tcpEchoRTT},
				},
			},
			{
				Name:      "commit-chained",
				Doc:       "one client, 1000 writes sent back to back, then their acknowledgements awaited (one op = 1000 writes)",
				Unit:      "acked writes/s",
				WorkPerOp: chainWindow,
				Rows: []Row{
					weftRow("one client, 1000 Cells: Run sets each Cell's value (blind) without waiting, then the 1000 handles are awaited",
						weftChained),
					{System: sysRedis, Note: "go-redis Pipeline of 1000 SETs per Exec, on 1000 keys (at most 1000 in flight)",
						Setup: redisChained},
				},
			},
			{
				Name: "rmw-8c",
				Doc:  "8 clients, each a read-modify-write of a random key among 1000, retried on conflict",
				Unit: "commits/s",
				Rows: []Row{
					weftRow("8 clients, 1000 Cells: Atomically increments a random Cell's value; the client reruns it after an abort conflict",
						weftReplRMW),
					{System: sysRedis, Note: "8 connections, WATCH key, GET, MULTI, SET, EXEC; retried when EXEC aborts",
						Setup: redisRMW},
				},
			},
			{
				Name: "counter-8c",
				Doc:  "8 clients incrementing one counter",
				Unit: "increments/s",
				Rows: []Row{
					weftRow("8 clients, Atomically adds 1 to one Tally's counter field (blind, never aborted)",
						weftCounter),
					{System: sysRedis, Note: "8 connections, INCR of one key",
						Setup: redisCounter},
				},
			},
			{
				Name:      "fanout-1w-8r",
				Doc:       "one writer, 8 readers each receiving every change (one op = 1 write, 8 deliveries)",
				Unit:      "deliveries/s",
				WorkPerOp: replClients,
				Rows: []Row{
					weftRow("1 client commits blind writes to a Cell with Run (pipelined, every handle checked); 8 clients with the share open count the commits applied to their replica (Subscribe, Change.Commits; Updates arriving together are installed as one local commit, so observers see a fraction of the values); writer at most 1000 ahead",
						weftFanout),
					{System: sysNATS, Note: "embedded nats-server, nats.go: 1 publisher and 8 subscriber connections on one subject; publisher at most 1000 messages ahead",
						Setup: natsFanout},
					{System: sysRedis, Note: "PUBLISH pipelined (up to 256 per go-redis pipeline, every reply checked = 8 receivers) to 8 SUBSCRIBE connections; publisher at most 1000 messages ahead",
						Setup: redisFanout},
				},
			},
			{
				Name:      "sync-100k",
				Doc:       "a client opening a share of 100,000 objects, until it holds them all (one op = 100,000 objects)",
				Unit:      "objects/s",
				WorkPerOp: float64(syncObjects),
				Rows: []Row{weftRow("a share of 100,000 Cells; one op dials a fresh client, Opens the share (snapshot chunks, materialisation), checks it holds every Cell, closes the client",
					weftSync)},
			},
		},
	}
}
