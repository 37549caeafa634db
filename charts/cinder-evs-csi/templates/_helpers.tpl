{{- define "cinder-evs-csi.labels" -}}
app.kubernetes.io/name: cinder-evs-csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "cinder-evs-csi.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{- define "cinder-evs-csi.sidecarSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}
