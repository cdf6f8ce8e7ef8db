# Nomad job running the Nomad Autoscaler with multipass-target in split mode.
#
#   cd deploy/nomad
#   nomad job run \
#     -var 'plugin_artifact_url=https://files.example.internal/multipass-target_linux_amd64.tar.gz' \
#     -var 'hostd_address=tcp://10.1.2.1:7400' \
#     -var 'cloud_init_file=web-cloud-init.yaml' \
#     autoscaler.nomad.hcl
#
# Run it from this directory: `file(...)` below reads policy.hcl and the
# cloud-init file relative to the directory `nomad job run` is started in.
#
# Driver: `exec`, not the hashicorp/nomad-autoscaler docker image. The image
# is Alpine (musl), and multipass-target is a glibc program linked against
# Debian 12's gRPC, CAF and ZeroMQ libraries, so it cannot run inside it.
# `exec` runs the official autoscaler release binary in a chroot built from
# the client's own /usr and /lib, where those libraries are installed (see
# the README: the client that runs this job needs the runtime packages and
# must reach hostd's bus address). raw_exec would work too, without the
# isolation.
#
# Keys: hostd's public key and this plugin's secret key come from the Nomad
# variable nomad/jobs/autoscaler, which only this job's tasks can read
# (workload identity), rendered into secrets/ (0600, never in the job spec):
#
#   nomad var put nomad/jobs/autoscaler \
#     plugin_key=@plugin.key hostd_pub=@hostd.pub \
#     status_key=@status.key operator_pub=@operator.pub \
#     nomad_token=<token of the autoscaler's ACL policy, or leave it out without ACLs>
#
# A host volume with the key files would do as well; the variable keeps the
# secret off every client's disk except the one running the task.
#
# Several Multipass hosts (one multipass-hostd each, README "A pool over
# several hosts"): leave hostd_address unset and name a hosts file instead,
# e.g. the two-host example next to this file:
#
#   nomad job run -var 'plugin_artifact_url=...' -var 'cloud_init_file=web-cloud-init.yaml' \
#     -var 'hosts_file=hosts.two-hosts.json' autoscaler.nomad.hcl
#
# The job renders it for the plugin with each host's key path set to
# /secrets/hostd-<name>.pub, filled from the variable's hostd_pub_0,
# hostd_pub_1, ... in the order of the file (deploy/KEYS.md, "Two hosts").

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "autoscaler_version" {
  type    = string
  default = "0.4.5"
}

variable "plugin_artifact_url" {
  description = "A .tar.gz holding bin/multipass-target and lib/multipass-target-backend.so (README, Deploying)"
  type        = string
}

variable "hostd_address" {
  description = "multipass-hostd's bus endpoint as the VMs reach it, tcp://HOST:PORT (one host; unset with hosts_file)"
  type        = string
  default     = ""
}

variable "hosts_file" {
  description = "Several hosts: a hosts file (README, The hosts file) next to this job, e.g. hosts.two-hosts.json; empty: the one host of hostd_address"
  type        = string
  default     = ""
}

locals {
  # The hosts file's entries, each with its key where the job renders it.
  hosts = var.hosts_file == "" ? [] : [
    for h in jsondecode(file(var.hosts_file)).hosts :
    merge(h, { hostd_server_key_path = "/secrets/hostd-${h.name}.pub" })
  ]
}

variable "cloud_init_file" {
  description = "cloud-init user-data for new pool VMs (a filled-in copy of ../nomad-client-cloud-init.yaml)"
  type        = string
}

job "autoscaler" {
  datacenters = var.datacenters
  type        = "service"

  group "autoscaler" {
    count = 1

    # Never run the autoscaler on a node of a pool it scales in: it would
    # drain itself. Run it on a node outside every Multipass pool.
    constraint {
      attribute = "${node.class}"
      operator  = "!="
      value     = "web"
    }

    network {
      port "http" {}
      # `mpscale status` / `mpscale events` (events on the next port).
      port "status" {
        static = 7500
      }
      port "status_events" {
        static = 7501
      }
      # multipass-target's Prometheus /metrics and /ready (deploy/prometheus/).
      port "metrics" {
        static = 9465
      }
    }

    # state_dir lives here, so a restarted or rescheduled task keeps it.
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 300
    }

    task "autoscaler" {
      driver = "exec"

      config {
        command = "local/nomad-autoscaler"
        args    = ["agent", "-config", "local/config/agent.hcl"]
      }

      artifact {
        source      = "https://releases.hashicorp.com/nomad-autoscaler/${var.autoscaler_version}/nomad-autoscaler_${var.autoscaler_version}_linux_amd64.zip"
        destination = "local"
      }

      # The autoscaler execs <plugin_dir>/<driver>: the archive unpacks to
      # local/multipass-target/bin/multipass-target (an archive keeps the
      # executable bit), which loads its backend module from ../lib.
      artifact {
        source      = var.plugin_artifact_url
        destination = "local/multipass-target"
      }

      template {
        destination = "secrets/plugin.key"
        perms       = "0600"
        data        = <<-EOT
        {{ with nomadVar "nomad/jobs/autoscaler" }}{{ .plugin_key }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/hostd.pub"
        perms       = "0600"
        data        = <<-EOT
        {{ with nomadVar "nomad/jobs/autoscaler" }}{{ .hostd_pub }}{{ end }}
        EOT
      }

      # Several hosts: one public key per host, and the hosts file naming them.
      dynamic "template" {
        for_each = local.hosts
        content {
          destination = "secrets/hostd-${template.value.name}.pub"
          perms       = "0600"
          data        = <<-EOT
          {{ with nomadVar "nomad/jobs/autoscaler" }}{{ .hostd_pub_${template.key} }}{{ end }}
          EOT
        }
      }

      dynamic "template" {
        for_each = length(local.hosts) > 0 ? [jsonencode({ hosts = local.hosts })] : []
        content {
          destination   = "local/hosts.json"
          data          = template.value
          # JSON is not a consul-template: nothing in it is an action.
          left_delimiter  = "<%mps%"
          right_delimiter = "%mps%>"
          change_mode     = "signal"
          change_signal   = "SIGHUP"
        }
      }

      # The status endpoint's own key pair and the operators admitted to it
      # (read-only: only status and events are served there).
      template {
        destination = "secrets/status.key"
        perms       = "0600"
        data        = <<-EOT
        {{ with nomadVar "nomad/jobs/autoscaler" }}{{ .status_key }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/status-authorized/operator.pub"
        perms       = "0600"
        data        = <<-EOT
        {{ with nomadVar "nomad/jobs/autoscaler" }}{{ .operator_pub }}{{ end }}
        EOT
      }

      template {
        destination   = "local/policies/multipass-web.hcl"
        data          = file("policy.hcl")
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        destination = "local/cloud-init/web.yaml"
        data        = file(var.cloud_init_file)
      }

      # The agent configuration. SIGHUP makes the agent reload it and send the
      # plugin a new SetConfig.
      template {
        destination   = "local/config/agent.hcl"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
        log_level  = "info"
        plugin_dir = "/local/multipass-target/bin"

        http {
          bind_address = "{{ env "NOMAD_IP_http" }}"
          bind_port    = {{ env "NOMAD_PORT_http" }}
        }

        nomad {
          address = "http://{{ env "attr.unique.network.ip-address" }}:4646"
          {{- with nomadVar "nomad/jobs/autoscaler" }}{{ if .nomad_token }}
          token   = "{{ .nomad_token }}"
          {{- end }}{{ end }}
        }

        policy {
          dir = "/local/policies"
        }

        apm "nomad-apm" {
          driver = "nomad-apm"
        }

        strategy "target-value" {
          driver = "target-value"
        }

        target "multipass-target" {
          driver = "multipass-target"
          config = {
            %{ if length(local.hosts) == 0 ~}
            hostd_address         = "${var.hostd_address}"
            hostd_server_key_path = "/secrets/hostd.pub"
            %{ else ~}
            hosts_file            = "/local/hosts.json"
            %{ endif ~}
            bus_key_path          = "/secrets/plugin.key"
            state_dir             = "/alloc/data/multipass-target"
            max_parallel_launches = "4"

            status_address              = "tcp://{{ env "NOMAD_IP_status" }}:{{ env "NOMAD_PORT_status" }}"
            status_server_key_path      = "/secrets/status.key"
            status_authorized_keys_path = "/secrets/status-authorized"

            metrics_address = "{{ env "NOMAD_IP_metrics" }}:{{ env "NOMAD_PORT_metrics" }}"

            # The agent merges its nomad {} block into every plugin's config
            # (nomad_address, nomad_token, ...); set one here only to differ.
            nomad_block-query-wait-time = "5m"
          }
        }
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }

      service {
        name     = "nomad-autoscaler"
        port     = "http"
        provider = "nomad"
        check {
          type     = "http"
          path     = "/v1/health"
          interval = "10s"
          timeout  = "2s"
        }
      }

      # The plugin's metrics, for Prometheus's Nomad service discovery; the
      # check fails while the plugin is not configured.
      service {
        name     = "multipass-target-metrics"
        port     = "metrics"
        provider = "nomad"
        check {
          type     = "http"
          path     = "/ready"
          interval = "10s"
          timeout  = "2s"
        }
      }
    }
  }
}
