{{/* ---- Names and labels ------------------------------------------------- */}}

{{- define "digits.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources. Component names are appended to it, so
it leaves room under the 63-character limit.
*/}}
{{- define "digits.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "digits.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "digits.selectorLabels" -}}
app.kubernetes.io/name: {{ include "digits.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "digits.labels" -}}
helm.sh/chart: {{ include "digits.chart" . }}
{{ include "digits.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of one component; call with (list $ "web"). */}}
{{- define "digits.componentLabels" -}}
{{- $root := index . 0 -}}
{{ include "digits.labels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "digits.componentSelectorLabels" -}}
{{- $root := index . 0 -}}
{{ include "digits.selectorLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "digits.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "digits.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The digits image; call with (list $ <gpu: bool>). */}}
{{- define "digits.image" -}}
{{- $root := index . 0 -}}
{{- $img := $root.Values.image -}}
{{- $tag := default $root.Chart.AppVersion $img.tag -}}
{{- if index . 1 }}
{{- $tag = default (printf "%s-gpu" $tag) $img.gpuTag }}
{{- end }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}

{{/* ---- Settings ---------------------------------------------------------- */}}

{{/*
Fail early, with the value to set, when production mode misses a setting or
evaluation mode is given external services it would silently ignore.
*/}}
{{- define "digits.validate" -}}
{{- $v := .Values -}}
{{- $urls := dict "database" $v.database "broker" $v.broker "channelLayer" $v.channelLayer -}}
{{- if $v.evaluation.enabled }}
{{- range $name, $svc := $urls }}
{{- if or $svc.url $svc.existingSecret }}
{{- fail (printf "digits: %s.url/%s.existingSecret are set but evaluation.enabled=true brings its own services; set evaluation.enabled=false to use them" $name $name) }}
{{- end }}
{{- end }}
{{- if $v.objectStore.endpoint }}
{{- fail "digits: objectStore.endpoint is set but evaluation.enabled=true brings its own MinIO; set evaluation.enabled=false to use it" }}
{{- end }}
{{- else }}
{{- if not (or $v.secretKey.value $v.secretKey.existingSecret) }}
{{- fail "digits: production mode (evaluation.enabled=false) needs secretKey.value or secretKey.existingSecret" }}
{{- end }}
{{- range $name, $svc := $urls }}
{{- if not (or $svc.url $svc.existingSecret) }}
{{- fail (printf "digits: production mode (evaluation.enabled=false) needs %s.url or %s.existingSecret" $name $name) }}
{{- end }}
{{- end }}
{{- if not $v.objectStore.endpoint }}
{{- fail "digits: production mode (evaluation.enabled=false) needs objectStore.endpoint (host:port of the S3 API)" }}
{{- end }}
{{- if not (or $v.objectStore.existingSecret (and $v.objectStore.accessKey $v.objectStore.secretKey)) }}
{{- fail "digits: production mode (evaluation.enabled=false) needs objectStore.existingSecret or both objectStore.accessKey and objectStore.secretKey" }}
{{- end }}
{{- end }}
{{- if hasKey $v.config.extraEnv "DIGITS_MAX_UPLOAD_MB" }}
{{- fail "digits: set config.maxUploadMB, not config.extraEnv.DIGITS_MAX_UPLOAD_MB: the Ingress body limit follows config.maxUploadMB" }}
{{- end }}
{{- range $name := keys (include "digits.secretRefs" . | fromYaml) }}
{{- if hasKey $v.config.extraEnv $name }}
{{- fail (printf "digits: config.extraEnv.%s would put a secret into the ConfigMap; use the chart's secret settings (existingSecret) instead" $name) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "digits.https" -}}
{{- if eq (toString .Values.config.https) "auto" }}
{{- and .Values.ingress.enabled (gt (len .Values.ingress.tls) 0) }}
{{- else }}
{{- .Values.config.https }}
{{- end }}
{{- end }}

{{/*
Non-secret settings as a YAML map of environment variables: the ConfigMap's
data, and the literal env of the migration hook (which runs before this
revision's ConfigMap exists).
*/}}
{{- define "digits.config" -}}
{{- $v := .Values -}}
{{- $fullname := include "digits.fullname" . -}}
{{- $https := eq (include "digits.https" .) "true" -}}
{{- /* Probes send Host: localhost; in-cluster clients use the Service name. */ -}}
{{- $hosts := list "localhost" "127.0.0.1" (printf "%s-web" $fullname) (printf "%s-web.%s" $fullname .Release.Namespace) (printf "%s-web.%s.svc" $fullname .Release.Namespace) -}}
{{- $origins := list -}}
{{- if $v.ingress.enabled }}
{{- range $v.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" $https) .host) }}
{{- end }}
{{- end }}
{{- $config := dict
  "DIGITS_DEBUG" (toString $v.config.debug)
  "DIGITS_HTTPS" (toString $https)
  "DIGITS_ALLOWED_HOSTS" (concat $hosts $v.config.allowedHosts | uniq | join ",")
  "DIGITS_CSRF_TRUSTED_ORIGINS" (concat $origins $v.config.csrfTrustedOrigins | uniq | join ",")
  "DIGITS_JOB_HEARTBEAT_SECONDS" (toString $v.config.jobHeartbeatSeconds)
  "DIGITS_JOB_STALE_SECONDS" (toString $v.config.jobStaleSeconds)
  "DIGITS_JOB_MAX_ATTEMPTS" (toString $v.config.jobMaxAttempts)
  "DIGITS_REAPER_INTERVAL" (toString $v.config.reaperInterval)
  "DIGITS_MAX_UPLOAD_MB" (toString (int $v.config.maxUploadMB))
  "DIGITS_GPU_SHARING" (toString (default false $v.config.gpuSharing))
  "DIGITS_NODE_HEARTBEAT_SECONDS" (toString (int (default 10 $v.config.nodeHeartbeatSeconds)))
  "DIGITS_DB_POOL_MAX_SIZE" (toString (int (ternary $v.config.databasePoolMaxSize 10 (hasKey $v.config "databasePoolMaxSize"))))
  "DIGITS_DB_POOL_TIMEOUT" (toString (default 10 $v.config.databasePoolTimeout))
-}}
{{- if $v.evaluation.enabled }}
{{- $_ := set $config "DIGITS_S3_ENDPOINT" (printf "%s-minio:9000" $fullname) }}
{{- $_ := set $config "DIGITS_S3_SECURE" "false" }}
{{- $_ := set $config "DIGITS_S3_REGION" "" }}
{{- else }}
{{- $_ := set $config "DIGITS_S3_ENDPOINT" $v.objectStore.endpoint }}
{{- $_ := set $config "DIGITS_S3_SECURE" (toString $v.objectStore.secure) }}
{{- $_ := set $config "DIGITS_S3_REGION" $v.objectStore.region }}
{{- end }}
{{- $_ := set $config "DIGITS_S3_BUCKET" $v.objectStore.bucket }}
{{- if $v.inference.enabled }}
{{- $_ := set $config "DIGITS_INFERENCE_URL" (printf "tcp://%s-inference:%d" $fullname (int $v.inference.port)) }}
{{- end }}
{{- range $name, $value := $v.config.extraEnv }}
{{- $_ := set $config $name (toString $value) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Where each secret setting comes from, as a YAML map
  <ENV NAME>: {secret: <Secret name>, key: <key in that Secret>}
The chart's own Secret uses the environment variable names as keys.
*/}}
{{- define "digits.secretRefs" -}}
{{- $v := .Values -}}
{{- $own := include "digits.fullname" . -}}
{{- $refs := dict -}}
{{- $sources := dict
  "DIGITS_SECRET_KEY" (list $v.secretKey.existingSecret $v.secretKey.existingSecretKey)
  "DATABASE_URL" (list $v.database.existingSecret $v.database.existingSecretKey)
  "DIGITS_BROKER_URL" (list $v.broker.existingSecret $v.broker.existingSecretKey)
  "DIGITS_CHANNEL_LAYER_URL" (list $v.channelLayer.existingSecret $v.channelLayer.existingSecretKey)
  "DIGITS_S3_ACCESS_KEY" (list $v.objectStore.existingSecret $v.objectStore.existingSecretAccessKeyKey)
  "DIGITS_S3_SECRET_KEY" (list $v.objectStore.existingSecret $v.objectStore.existingSecretSecretKeyKey)
-}}
{{- range $env, $source := $sources }}
{{- $secret := index $source 0 }}
{{- /* Evaluation mode wires the bundled services; only the secret key may be external. */ -}}
{{- if and $secret (or (not $v.evaluation.enabled) (eq $env "DIGITS_SECRET_KEY")) }}
{{- $_ := set $refs $env (dict "secret" $secret "key" (index $source 1)) }}
{{- else }}
{{- $_ := set $refs $env (dict "secret" $own "key" $env) }}
{{- end }}
{{- end }}
{{- toYaml $refs }}
{{- end }}

{{/* A value, else the one already stored in the release's Secret, else random; (list value existingData key length). */}}
{{- define "digits.persistentRandom" -}}
{{- $value := index . 0 -}}
{{- $existing := index . 1 -}}
{{- $key := index . 2 -}}
{{- if $value }}
{{- $value }}
{{- else if hasKey $existing $key }}
{{- index $existing $key | b64dec }}
{{- else }}
{{- randAlphaNum (index . 3) }}
{{- end }}
{{- end }}

{{/*
Plain-text content of the chart's own Secret as a YAML map. Generated values
are looked up from the installed Secret so upgrades keep them. Include this
once per template file: every include draws new random values.
*/}}
{{- define "digits.managedSecretData" -}}
{{- $v := .Values -}}
{{- $fullname := include "digits.fullname" . -}}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace $fullname).data | default dict -}}
{{- $refs := include "digits.secretRefs" . | fromYaml -}}
{{- $data := dict -}}
{{- if $v.evaluation.enabled }}
{{- $pg := include "digits.persistentRandom" (list $v.evaluation.postgresql.password $existing "POSTGRES_PASSWORD" 32) }}
{{- $redis := include "digits.persistentRandom" (list $v.evaluation.redis.password $existing "REDIS_PASSWORD" 32) }}
{{- $_ := set $data "POSTGRES_PASSWORD" $pg }}
{{- $_ := set $data "REDIS_PASSWORD" $redis }}
{{- $_ := set $data "DIGITS_SECRET_KEY" (include "digits.persistentRandom" (list $v.secretKey.value $existing "DIGITS_SECRET_KEY" 50)) }}
{{- $_ := set $data "DATABASE_URL" (printf "postgres://digits:%s@%s-postgresql:5432/digits" $pg $fullname) }}
{{- $_ := set $data "DIGITS_BROKER_URL" (printf "redis://:%s@%s-redis:6379/0" $redis $fullname) }}
{{- $_ := set $data "DIGITS_CHANNEL_LAYER_URL" (printf "redis://:%s@%s-redis:6379/1" $redis $fullname) }}
{{- $_ := set $data "DIGITS_S3_ACCESS_KEY" $v.evaluation.minio.rootUser }}
{{- $_ := set $data "DIGITS_S3_SECRET_KEY" (include "digits.persistentRandom" (list $v.evaluation.minio.rootPassword $existing "DIGITS_S3_SECRET_KEY" 40)) }}
{{- else }}
{{- $_ := set $data "DIGITS_SECRET_KEY" $v.secretKey.value }}
{{- $_ := set $data "DATABASE_URL" $v.database.url }}
{{- $_ := set $data "DIGITS_BROKER_URL" $v.broker.url }}
{{- $_ := set $data "DIGITS_CHANNEL_LAYER_URL" $v.channelLayer.url }}
{{- $_ := set $data "DIGITS_S3_ACCESS_KEY" $v.objectStore.accessKey }}
{{- $_ := set $data "DIGITS_S3_SECRET_KEY" $v.objectStore.secretKey }}
{{- end }}
{{- /* Drop what an existingSecret provides. */ -}}
{{- range $env, $ref := $refs }}
{{- if ne $ref.secret $fullname }}
{{- $_ := unset $data $env }}
{{- end }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* Checkpoint window of a worker pool's jobs: its grace period less 30 s (at least half of it). */}}
{{- define "digits.jobKillGraceSeconds" -}}
{{- $grace := int .terminationGracePeriodSeconds -}}
{{- max (sub $grace 30) (div $grace 2) 1 }}
{{- end }}

{{/* ---- Pod building blocks ----------------------------------------------- */}}

{{- define "digits.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "digits.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/*
Environment of every digits container. Secrets arrive as files (the
healthchecks-style <NAME>_FILE convention): they do not show in the pod spec
and a job child's environment never carries them.
*/}}
{{- define "digits.env" -}}
{{- /* Call with the root context, or (dict "root" $ "omit" (list <secret env names>)). */ -}}
{{- $root := . -}}
{{- $omit := list -}}
{{- if hasKey . "omit" }}
{{- $root = .root }}
{{- $omit = .omit }}
{{- end }}
- name: DIGITS_DATA_DIR
  value: /var/lib/digits
- name: TMPDIR
  value: /tmp
# Keras, matplotlib and friends write caches under $HOME.
- name: HOME
  value: /tmp
{{- range $env, $_ := include "digits.secretRefs" $root | fromYaml }}
{{- if not (has $env $omit) }}
- name: {{ $env }}_FILE
  value: /etc/digits/secrets/{{ $env }}
{{- end }}
{{- end }}
{{- end }}

{{- define "digits.envFrom" -}}
- configMapRef:
    name: {{ include "digits.fullname" . }}
{{- end }}

{{/* Call with (dict "root" $ "shm" <sizeLimit or "">). */}}
{{- define "digits.volumeMounts" -}}
- name: data
  mountPath: /var/lib/digits
- name: tmp
  mountPath: /tmp
- name: secrets
  mountPath: /etc/digits/secrets
  readOnly: true
{{- if .shm }}
- name: shm
  mountPath: /dev/shm
{{- end }}
{{- end }}

{{/*
Volumes of every digits pod; call with
(dict "root" $ "secret" <name of the chart's Secret to project> "scratch" <sizeLimit> "shm" <sizeLimit>);
a "scratch" limit applies to DIGITS_DATA_DIR and TMPDIR each; an optional "omit"
lists secret settings the pod does not get.
*/}}
{{- define "digits.volumes" -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      {{- $own := include "digits.fullname" .root }}
      {{- /* One source per Secret, each listing the keys taken from it. */}}
      {{- $bySecret := dict }}
      {{- range $env, $ref := include "digits.secretRefs" .root | fromYaml }}
      {{- if not (has $env ($.omit | default list)) }}
      {{- $name := eq $ref.secret $own | ternary $.secret $ref.secret }}
      {{- $item := dict "key" $ref.key "path" $env }}
      {{- $_ := set $bySecret $name (append (get $bySecret $name | default list) $item) }}
      {{- end }}
      {{- end }}
      {{- range $name, $items := $bySecret }}
      - secret:
          name: {{ $name }}
          items:
            {{- toYaml $items | nindent 12 }}
      {{- end }}
{{- /* TMPDIR also holds uploads in flight, so it gets the scratch limit too. */}}
{{- range $volume := list "data" "tmp" }}
- name: {{ $volume }}
  {{- if $.scratch }}
  emptyDir:
    sizeLimit: {{ $.scratch }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- if .shm }}
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .shm }}
{{- end }}
{{- end }}

{{/* Pod metadata shared by the app pods; call with (list $ "component" (extra labels dict)). */}}
{{- define "digits.podMetadata" -}}
{{- $root := index . 0 -}}
labels:
  {{- include "digits.componentLabels" (list $root (index . 1)) | nindent 2 }}
  {{- with index . 2 }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
  checksum/secret: {{ include "digits.secretChecksum" $root }}
  {{- with $root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
Rolls pods when secret settings change. Hashes the values rather than the
rendered Secret, whose generated passwords differ between a first install and
the lookups of later upgrades.
*/}}
{{- define "digits.secretChecksum" -}}
{{- $v := .Values -}}
{{- list $v.secretKey $v.database $v.broker $v.channelLayer $v.objectStore $v.evaluation | toJson | sha256sum }}
{{- end }}

{{/* Settings shared by the app pods' specs. */}}
{{- define "digits.podSpecCommon" -}}
serviceAccountName: {{ include "digits.serviceAccountName" . }}
# The platform never talks to the Kubernetes API.
automountServiceAccountToken: false
# Service links would inject DIGITS_*-looking variables for our own Services.
enableServiceLinks: false
securityContext:
  {{- include "digits.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Init container holding a pod back until the migration hook has brought the
schema up to date; call with (list $ <gpu image: bool>).
*/}}
{{- define "digits.waitForMigrations" -}}
{{- $root := index . 0 -}}
{{- if and $root.Values.migrations.enabled $root.Values.migrations.waitInitContainer }}
- name: wait-for-migrations
  image: {{ include "digits.image" . }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    - sh
    - -c
    - until python manage.py migrate --check >/dev/null; do echo "waiting for database migrations"; sleep 5; done
  env:
    {{- include "digits.env" $root | nindent 4 }}
  envFrom:
    {{- include "digits.envFrom" $root | nindent 4 }}
  securityContext:
    {{- include "digits.securityContext" $root | nindent 4 }}
  resources:
    {{- toYaml $root.Values.migrations.resources | nindent 4 }}
  volumeMounts:
    {{- include "digits.volumeMounts" (dict "root" $root) | nindent 4 }}
{{- end }}
{{- end }}

{{/*
Hook phases of the migration Job and its Secret. In evaluation mode the
database is part of this release, so the first migration runs post-install.
*/}}
{{- define "digits.migrationHookAnnotations" -}}
"helm.sh/hook": {{ .Values.evaluation.enabled | ternary "post-install,pre-upgrade" "pre-install,pre-upgrade" }}
{{- /* A failed Job stays for `kubectl logs` until the next attempt replaces it. */}}
"helm.sh/hook-delete-policy": before-hook-creation,hook-succeeded
{{- end }}

{{/* ---- Evaluation services ----------------------------------------------- */}}

{{/* Pod securityContext of a bundled service; call with the image's uid. */}}
{{- define "digits.evaluation.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The data volume of a bundled service: a PVC template, or emptyDir; call with (list $ "postgresql" <persistence>). */}}
{{- define "digits.evaluation.volumeClaimTemplates" -}}
{{- $persistence := index . 2 -}}
{{- if $persistence.enabled -}}
volumeClaimTemplates:
  - metadata:
      name: data
      labels:
        {{- include "digits.componentLabels" (list (index . 0) (index . 1)) | nindent 8 }}
    spec:
      accessModes: ["ReadWriteOnce"]
      {{- with $persistence.storageClass }}
      storageClassName: {{ . }}
      {{- end }}
      resources:
        requests:
          storage: {{ $persistence.size }}
{{- end }}
{{- end }}
