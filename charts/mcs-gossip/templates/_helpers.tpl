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

{{/* The Secret holding a key file: the one named by the user, or the one this chart makes. */}}
{{- define "mcs-gossip.identitySecret" -}}
{{- if .Values.identity.existingSecret -}}
{{- .Values.identity.existingSecret -}}
{{- else if .Values.identity.keyBase64 -}}
{{- printf "%s-identity" (include "mcs-gossip.fullname" .) -}}
{{- else -}}
{{- fail "identity: set identity.existingSecret (a Secret with key `identity.key`) or identity.keyBase64 (from `mcs-gossip keygen`)" -}}
{{- end -}}
{{- end -}}

{{- define "mcs-gossip.clusterSetKeySecret" -}}
{{- if .Values.clusterSetKey.existingSecret -}}
{{- .Values.clusterSetKey.existingSecret -}}
{{- else if .Values.clusterSetKey.keyBase64 -}}
{{- printf "%s-clusterset-key" (include "mcs-gossip.fullname" .) -}}
{{- else -}}
{{- fail "clusterSetKey: set clusterSetKey.existingSecret (a Secret with key `clusterset.key`) or clusterSetKey.keyBase64 (from `mcs-gossip psk`)" -}}
{{- end -}}
{{- end -}}
