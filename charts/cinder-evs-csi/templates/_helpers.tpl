{{- define "cinder-evs-csi.labels" -}}
app.kubernetes.io/name: cinder-evs-csi
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "cinder-evs-csi.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{/* The parts every container takes from its values: extra arguments come from the caller. */}}
{{- define "cinder-evs-csi.containerExtras" -}}
{{- with .envFrom }}
envFrom: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .resources }}
resources: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Tuning flags of a controller sidecar; each only when set, so the sidecar's default holds. */}}
{{- define "cinder-evs-csi.sidecarTuning" -}}
{{- with .kubeApiQps }}
- --kube-api-qps={{ . }}
{{- end }}
{{- with .kubeApiBurst }}
- --kube-api-burst={{ . }}
{{- end }}
{{- with .workerThreads }}
- --worker-threads={{ . }}
{{- end }}
{{- with .leaderElection.leaseDuration }}
- --leader-election-lease-duration={{ . }}
{{- end }}
{{- with .leaderElection.renewDeadline }}
- --leader-election-renew-deadline={{ . }}
{{- end }}
{{- with .leaderElection.retryPeriod }}
- --leader-election-retry-period={{ . }}
{{- end }}
{{- range .extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* env (plus the fixed entries the caller gives) and volume mounts of a sidecar. */}}
{{- define "cinder-evs-csi.sidecarEnvMounts" -}}
{{- with .env }}
env: {{- toYaml . | nindent 2 }}
{{- end }}
{{- include "cinder-evs-csi.containerExtras" . }}
{{- end }}

{{/* Whether the cluster serves an API (group/version/Kind). */}}
{{- define "cinder-evs-csi.hasSnapshots" -}}
{{- if .Capabilities.APIVersions.Has "snapshot.storage.k8s.io/v1/VolumeSnapshotClass" }}true{{ end }}
{{- end }}
{{- define "cinder-evs-csi.hasGroupSnapshots" -}}
{{- if .Capabilities.APIVersions.Has "groupsnapshot.storage.k8s.io/v1beta2/VolumeGroupSnapshotClass" }}true{{ end }}
{{- end }}
{{- define "cinder-evs-csi.hasAttributesClasses" -}}
{{- if .Capabilities.APIVersions.Has "storage.k8s.io/v1/VolumeAttributesClass" }}true{{ end }}
{{- end }}
