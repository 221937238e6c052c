{{/*
Names, labels and the few values several templates derive. Every derived number is computed
here once, so the Fleet, the FleetAutoscaler and the node's own settings cannot disagree.
*/}}

{{- define "coil.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The Fleet's name. Agones names GameServers <fleet>-<5>-<5>, and the node uses its GameServer
name as NODE_ID, which the room directory caps at 32 characters: so at most 20 here.
*/}}
{{- define "coil.fleetName" -}}
{{- $name := printf "%s-node" (include "coil.fullname" .) -}}
{{- if gt (len $name) 20 -}}
{{- fail (printf "the Fleet name %q is longer than 20 characters (GameServer names become NODE_ID, at most 32 characters): set fullnameOverride to something shorter" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "coil.matchmakerName" -}}
{{- printf "%s-matchmaker" (include "coil.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coil.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "coil.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "coil.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: coil
{{- end -}}

{{- define "coil.image" -}}
{{- $repository := required "image.repository is required: where the image built from deploy/container/Dockerfile is pushed" .Values.image.repository -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Seats per node: what the matchmaker fills a node to (MAX_ROOMS x ROOM_SOFT_CAP). */}}
{{- define "coil.seatsPerNode" -}}
{{- mul (int .Values.rooms.maxRooms) (int .Values.rooms.softCap) -}}
{{- end -}}

{{/* The node's shutdown budget: its drain deadline plus time for the final frames and Shutdown. */}}
{{- define "coil.nodeGracePeriod" -}}
{{- add (max (int .Values.gameNodes.drainTimeoutSeconds) (int .Values.gameNodes.matchDrainDeadlineSeconds)) 30 -}}
{{- end -}}

{{/* An environment variable from a Secret the operator created (never a value in the chart). */}}
{{- define "coil.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{/* Settings both services read. */}}
{{- define "coil.sharedEnv" -}}
{{- $redis := required "redis.existingSecret is required: a Secret whose key (redis.urlKey) holds redis://..." .Values.redis.existingSecret -}}
{{ include "coil.secretEnv" (dict "name" "REDIS_URL" "secret" $redis "key" .Values.redis.urlKey) }}
- name: REDIS_KEY_PREFIX
  value: {{ .Values.redis.keyPrefix | quote }}
- name: ROOM_SOFT_CAP
  value: {{ .Values.rooms.softCap | quote }}
- name: ROOM_HARD_CAP
  value: {{ .Values.rooms.hardCap | quote }}
{{- with .Values.internalSecret.existingSecret }}
{{ include "coil.secretEnv" (dict "name" "INTERNAL_SECRET" "secret" . "key" $.Values.internalSecret.key) }}
{{- end }}
- name: LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: RUST_LOG
  value: {{ .Values.logging.level | quote }}
{{- end -}}

{{/* The container security settings both services use: the image's non-root user. */}}
{{- define "coil.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Prometheus' kubernetes-pods convention (see deploy/kubernetes/monitoring). */}}
{{- define "coil.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}
