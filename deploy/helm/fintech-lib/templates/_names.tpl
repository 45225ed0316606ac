{{/*
Names. Kubernetes names are DNS labels: at most 63 characters, no trailing dash.
*/}}

{{/* The chart name, or .Values.nameOverride. */}}
{{- define "fintech-lib.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's full name: .Values.fullnameOverride, or "<release>-<chart>", or just the release
name when it already contains the chart name (release "fintech" gives "fintech").
*/}}
{{- define "fintech-lib.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
"<fullname>-<component>[-<suffix>]".
Usage: include "fintech-lib.names.component" (dict "context" $ "component" "contact-us" "suffix" "migrate")
*/}}
{{- define "fintech-lib.names.component" -}}
{{- $base := include "fintech-lib.names.fullname" .context -}}
{{- $name := printf "%s-%s" $base .component -}}
{{- if .suffix -}}
{{- $name = printf "%s-%s" $name .suffix -}}
{{- end -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "name %q is longer than 63 characters: shorten the release name or set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "fintech-lib.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A service name as it appears in environment variable names: "contact-us" -> "CONTACT_US".
Usage: include "fintech-lib.names.envKey" "contact-us"
*/}}
{{- define "fintech-lib.names.envKey" -}}
{{- . | replace "-" "_" | upper -}}
{{- end -}}
