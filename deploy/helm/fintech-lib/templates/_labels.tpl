{{/*
Labels, the Kubernetes recommended set.
Usage: include "fintech-lib.labels.standard" (dict "context" $ "component" "contact-us")
*/}}
{{- define "fintech-lib.labels.standard" -}}
{{ include "fintech-lib.labels.matchLabels" . }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: fintech
{{- with .context.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
helm.sh/chart: {{ include "fintech-lib.names.chart" .context }}
{{- end -}}

{{/*
The immutable subset used in selectors (Deployment, PodDisruptionBudget, NetworkPolicy,
PodMonitoring). Never add a label here that can change between releases: a Deployment's selector
cannot be changed in place.
*/}}
{{- define "fintech-lib.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "fintech-lib.names.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}
