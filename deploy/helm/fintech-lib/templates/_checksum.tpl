{{/*
The SHA-256 of a value's YAML form, for "checksum/..." pod annotations: the pods roll when, and
only when, what they read changes. Never use a timestamp for this.
Usage: include "fintech-lib.checksum" $configData
*/}}
{{- define "fintech-lib.checksum" -}}
{{- toYaml . | sha256sum -}}
{{- end -}}
