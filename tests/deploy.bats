#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# deploy.bats: deploy/check, the offline validation of the Kubernetes manifests (scripts/lint
# runs it over deploy/kubernetes), finds what it is there to find.
# shellcheck disable=SC2154 # $stderr, $output and $lines are set by bats' run
bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	cd "$BATS_TEST_TMPDIR" || return
	cp -r "$EVPIPE_ROOT/deploy/kubernetes" k
}

@test "deploy/check: the manifests of deploy/kubernetes are valid" {
	run -0 --separate-stderr "$EVPIPE_ROOT/deploy/check"
	[[ $stderr == *"5 manifests valid (Kubernetes 1.30.0, KEDA github.com/kedacore/keda/v2@v2.21.1)"* ]]
}

@test "deploy/check: an unknown field, a wrong type (one per manifest), a ScaledObject past the partitions or of another group are refused" {
	sed -i 's/terminationGracePeriodSeconds:/terminationGracePeriodSecond:/' k/statefulset.yaml
	sed -i 's/port: 9102,/port: "9102",/' k/service.yaml
	sed -i 's/maxReplicaCount: 6/maxReplicaCount: 7/; s/pollingInterval:/pollingIntervall:/' k/keda-scaledobject.yaml
	sed -i 's/consumerGroup: evpipe-events/consumerGroup: other/; s/minReplicaCount: 1/minReplicaCount: "1"/' k/keda-scaledobject.yaml
	run -1 --separate-stderr "$EVPIPE_ROOT/deploy/check" k
	[[ $stderr == *"statefulset.yaml: StatefulSet evpipe-events:"*"terminationGracePeriodSecond"* ]]
	[[ $stderr == *"service.yaml: Service evpipe-events-metrics: '9102' is not of type 'integer' at /spec/ports/2/port"* ]]
	[[ $stderr == *"field spec.pollingIntervall is not in KEDA's schema (pruned)"* ]]
	[[ $stderr == *"'1' is not of type 'integer'"* ]]
	[[ $stderr == *"ScaledObject: maxReplicaCount is over the topic's 6 partitions"* ]]
	[[ $stderr == *"ScaledObject: consumerGroup is not the ConfigMap's EVPIPE_GROUP"* ]]
}

@test "deploy/check: a Service that selects no copy, or a kind without a schema, is refused" {
	sed -i 's/app.kubernetes.io\/component: events-to-clickhouse$/app.kubernetes.io\/component: other/' k/service.yaml
	printf 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n' > k/widget.yaml
	run -1 --separate-stderr "$EVPIPE_ROOT/deploy/check" k
	[[ $stderr == *"Service: its selector does not select the StatefulSet's pods"* ]]
	[[ $stderr == *"widget.yaml: Widget w: no schema for example.com/v1 Widget"* ]]
}
