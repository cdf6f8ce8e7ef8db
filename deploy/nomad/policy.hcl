# Cluster scaling policy for one Multipass pool, the Nomad clients of class
# "web". The autoscaler job (autoscaler.nomad.hcl) renders this file into its
# policy directory; to run the autoscaler some other way, put it in the
# directory the agent's `policy { dir = ... }` names.
#
# Every value in the target block is a string (the autoscaler hands the block
# to the plugin as map<string,string>); the README's "Policy target keys"
# table lists every key multipass-target reads, with defaults.
scaling "multipass_web" {
  enabled = true
  # The autoscaler clamps the strategy's desired count to [min, max]; keep
  # max <= the target's max_instances (the plugin's own safety cap).
  min = 1
  max = 6

  policy {
    # Status must answer within 75% of this (the autoscaler's gRPC deadline).
    evaluation_interval = "30s"
    # A Multipass VM takes minutes to boot and join Nomad: do not judge the
    # pool again before the new nodes carry allocations.
    cooldown             = "5m"
    cooldown_on_scale_up = "3m"

    # nomad-apm's cluster queries: the share of the pool's CPU and memory
    # that allocations have reserved. The larger desired count wins.
    check "cpu_allocated" {
      source = "nomad-apm"
      query  = "percentage-allocated_cpu"
      strategy "target-value" {
        target = 70
      }
    }
    check "memory_allocated" {
      source = "nomad-apm"
      query  = "percentage-allocated_memory"
      strategy "target-value" {
        target = 70
      }
    }

    target "multipass-target" {
      # The pool: Nomad nodes of this class, Multipass instances named web-*.
      node_class           = "web"
      datacenter           = "dc1"
      instance_name_prefix = "web"

      # What a scale out launches.
      instance_image_name       = "24.04"
      instance_size             = "c2-m4-d20"
      cloud_init_user_data_path = "/local/cloud-init/web.yaml"

      max_instances             = "6"
      max_parallel_launches     = "2"
      startup_timeout           = "10m"
      node_registration_timeout = "10m"

      # Scale in: drain the least busy nodes for up to 10 minutes, then
      # delete their VMs and purge them from Nomad.
      node_selector_strategy        = "least_busy"
      node_drain_deadline           = "10m"
      node_drain_ignore_system_jobs = "false"
      node_purge                    = "true"
      node_id_attribute             = "unique.hostname"
    }
  }
}
