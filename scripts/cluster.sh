#!/usr/bin/env bash
# cluster.sh starts a local three-node pmd cluster on loopback (make cluster): HTTP on
# 127.0.0.1:7071-7073, Raft on 127.0.0.1:7081-7083, data in ${CLUSTER_DATA:-./cluster-data}/n1..n3.
# Ctrl-C stops all three. Started again, the nodes rejoin with their data.
set -euo pipefail
bin=${PMD:-./bin/pmd}
data=${CLUSTER_DATA:-./cluster-data}
config=${CONFIG:-examples/catering/pmd.yaml}
join=127.0.0.1:7081,127.0.0.1:7082,127.0.0.1:7083
pids=()
# Each node runs in a process group of its own (set -m), so that Ctrl-C reaches this
# script alone, and stop sends each node one SIGTERM: a node that got the terminal's
# SIGINT as well would take the SIGTERM for a second signal and exit at once, without
# its clean shutdown (closing the store, flushing the index).
set -m
stop() {
	for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
}
# finish, on the way out (Ctrl-C, SIGTERM, the terminal's SIGHUP, a node that exited),
# stops the nodes and waits for all of them: the script never exits before its nodes,
# which would keep running, holding their ports and data directories. A clean shutdown
# can take up to a node's --shutdown-grace; a Ctrl-C (or SIGTERM, SIGHUP) while the
# script waits sends each node a second SIGTERM, which makes it exit at once.
finish() {
	trap stop INT TERM HUP
	if [ -n "$(jobs -p)" ]; then
		stop
		echo "stopping the nodes (Ctrl-C again makes them exit at once)" >&2 || true
	fi
	until wait; do :; done
}
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap finish EXIT
for i in 1 2 3; do
	mkdir -p "$data/n$i"
	"$bin" serve --data "$data/n$i" --addr "127.0.0.1:707$i" --config "$config" \
		--node-id "n$i" --raft-addr "127.0.0.1:708$i" --join "$join" --bootstrap-expect 3 \
		>"$data/n$i.log" 2>&1 &
	pids+=($!)
done
echo "pmd cluster: n1 http://127.0.0.1:7071  n2 http://127.0.0.1:7072  n3 http://127.0.0.1:7073 (logs in $data/n*.log)"
echo "  status: ./bin/pmd cluster status --addr 127.0.0.1:7071"
echo "  write:  curl -s -X POST 'http://127.0.0.1:7072/v1/streams/Customer%247' -d '{\"events\":[{\"type\":\"CustomerConfirmedMenu\",\"data\":{\"order_id\":\"42\"}}]}'"
echo "Ctrl-C stops the three nodes."
wait -n "${pids[@]}" || true
echo "a node exited; stopping the others (see $data/n*.log)"
