{{- define "mcs-gossip.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "mcs-gossip.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mcs-gossip.labels" -}}
app.kubernetes.io/name: {{ include "mcs-gossip.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mcs-gossip.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcs-gossip.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcs-gossip.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The gossip Service (the node derives its announce addresses from it when gossip.announce is empty). */}}
{{- define "mcs-gossip.gossipService" -}}
{{- include "mcs-gossip.fullname" . -}}
{{- end -}}

{{- define "mcs-gossip.metricsService" -}}
{{- printf "%s-metrics" (include "mcs-gossip.fullname" .) -}}
{{- end -}}

{{/* The Lease of leader election (replicas > 1); the Role grants get and update on this name only. */}}
{{- define "mcs-gossip.leaseName" -}}
{{- include "mcs-gossip.fullname" . -}}
{{- end -}}

{{/* Whether the node learns its announce addresses from its gossip Service: no gossip.announce, and a Service
     type that has an address outside the cluster. */}}
{{- define "mcs-gossip.announceFromService" -}}
{{- if and (empty .Values.gossip.announce) (ne .Values.gossip.service.type "ClusterIP") -}}
true
{{- end -}}
{{- end -}}

{{/* The Secret holding a key file: the one named by the user, or the one this chart makes. */}}
{{- define "mcs-gossip.identitySecret" -}}
{{- if and .Values.identity.existingSecret .Values.identity.keyBase64 -}}
{{- fail "identity: set either identity.existingSecret or identity.keyBase64, not both" -}}
{{- else if .Values.identity.existingSecret -}}
{{- .Values.identity.existingSecret -}}
{{- else if .Values.identity.keyBase64 -}}
{{- printf "%s-identity" (include "mcs-gossip.fullname" .) -}}
{{- else -}}
{{- fail "identity: set identity.existingSecret (a Secret with key `identity.key`) or identity.keyBase64 (from `mcs-gossip keygen`)" -}}
{{- end -}}
{{- end -}}

{{- define "mcs-gossip.clusterSetKeySecret" -}}
{{- if and .Values.clusterSetKey.existingSecret .Values.clusterSetKey.keyBase64 -}}
{{- fail "clusterSetKey: set either clusterSetKey.existingSecret or clusterSetKey.keyBase64, not both" -}}
{{- else if .Values.clusterSetKey.existingSecret -}}
{{- .Values.clusterSetKey.existingSecret -}}
{{- else if .Values.clusterSetKey.keyBase64 -}}
{{- printf "%s-clusterset-key" (include "mcs-gossip.fullname" .) -}}
{{- else -}}
{{- fail "clusterSetKey: set clusterSetKey.existingSecret (a Secret with key `clusterset.key`) or clusterSetKey.keyBase64 (from `mcs-gossip psk`)" -}}
{{- end -}}
{{- end -}}

{{/* Milliseconds of a Go-style duration (30s, 1m30s, 1.5h, 500ms: values.schema.json checked the form). */}}
{{- define "mcs-gossip.durationMs" -}}
{{- $ms := 0.0 -}}
{{- $factors := dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|h|m|s)" . -1 -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" -}}
{{- $ms = addf $ms (mulf $n (get $factors $unit)) -}}
{{- end -}}
{{- printf "%.3f" $ms -}}
{{- end -}}

{{/* A duration as `mcs-gossip run` reads it: one number with one unit (10s, 500ms), else whole milliseconds. */}}
{{- define "mcs-gossip.nodeDuration" -}}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" . -}}
{{- . -}}
{{- else -}}
{{- printf "%.0fms" (include "mcs-gossip.durationMs" . | float64) -}}
{{- end -}}
{{- end -}}

{{/* Pod-template labels: the selector labels, then podLabels (which must not change the selector's). */}}
{{- define "mcs-gossip.podLabels" -}}
{{- include "mcs-gossip.selectorLabels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* Labels of the `helm test` pod (the NetworkPolicy lets it reach the metrics port). */}}
{{- define "mcs-gossip.testLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: readyz-test
{{- end -}}

{{/* Labels of the metrics Service, which the ServiceMonitor selects. */}}
{{- define "mcs-gossip.metricsSelectorLabels" -}}
{{ include "mcs-gossip.selectorLabels" . }}
app.kubernetes.io/component: metrics
{{- end -}}

{{/* PromQL label matchers (no braces) selecting this release's series in the alert rules: the user's, or the
     namespace and job a ServiceMonitor of this chart gives them (job: the metrics Service's name). */}}
{{- define "mcs-gossip.promSelector" -}}
{{- if .Values.metrics.prometheusRule.selector -}}
{{- .Values.metrics.prometheusRule.selector -}}
{{- else -}}
{{- printf "namespace=%q,job=%q" .Release.Namespace (include "mcs-gossip.metricsService" .) -}}
{{- end -}}
{{- end -}}
