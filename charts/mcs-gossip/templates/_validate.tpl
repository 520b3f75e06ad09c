{{/*
Checks values.schema.json cannot express; included by deployment.yaml, so every render runs them. Each failure
names the value and says what to do.
*/}}
{{- define "mcs-gossip.validate" -}}
{{- $v := .Values -}}
{{- $ttl := include "mcs-gossip.durationMs" $v.endpointTtl | float64 -}}
{{- $hb := include "mcs-gossip.durationMs" $v.heartbeatInterval | float64 -}}
{{- if lt $hb 1.0 -}}
{{- fail (printf "heartbeatInterval %q must be at least 1ms" $v.heartbeatInterval) -}}
{{- end -}}
{{- if lt $ttl (mulf 3 $hb) -}}
{{- fail (printf "endpointTtl %q must be at least 3 × heartbeatInterval %q (%.0fms): a heartbeat relays hop by hop, and a cluster would be withdrawn between two of its beats" $v.endpointTtl $v.heartbeatInterval (mulf 3 $hb)) -}}
{{- end -}}
{{- $horizonSet := false -}}
{{- range $v.extraArgs -}}
{{- if hasPrefix "--origin-horizon" . -}}{{- $horizonSet = true -}}{{- end -}}
{{- end -}}
{{- if and (ge $ttl 86400000.0) (not $horizonSet) -}}
{{- fail (printf "endpointTtl %q must be below the node's origin horizon (24h); raise it with extraArgs: [--origin-horizon=…]" $v.endpointTtl) -}}
{{- end -}}
{{- $_ := include "mcs-gossip.identitySecret" . -}}
{{- $_ := include "mcs-gossip.clusterSetKeySecret" . -}}
{{- if eq (int $v.gossip.port) (int $v.metrics.port) -}}
{{- fail (printf "gossip.port and metrics.port are both %d: the node needs two ports" (int $v.gossip.port)) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" $v.gossip.service.nodePort)) (eq $v.gossip.service.type "ClusterIP") -}}
{{- fail "gossip.service.nodePort is set but gossip.service.type is ClusterIP: a node port needs type NodePort or LoadBalancer" -}}
{{- end -}}
{{- range $k, $_ := include "mcs-gossip.selectorLabels" . | fromYaml -}}
{{- if hasKey ($v.podLabels | default dict) $k -}}
{{- fail (printf "podLabels must not set %s: it is a selector label of the Deployment" $k) -}}
{{- end -}}
{{- end -}}
{{- range $v.extraEnv -}}
{{- if and (hasKey . "value") (hasKey . "valueFrom") -}}
{{- fail (printf "extraEnv %s: set value or valueFrom, not both" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
