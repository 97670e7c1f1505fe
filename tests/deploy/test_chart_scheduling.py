"""Worker pods declare their GPUs to Kubernetes and to the scheduler alike."""

import pytest

from tests.deploy.test_chart import SCENARIOS, env_of, of_kind, render, render_error, worker

pytestmark = pytest.mark.deploy


def worker_env(docs, pool: str) -> dict:
    (container,) = worker(docs, pool)["spec"]["template"]["spec"]["containers"]
    return container


def test_gpu_pools_advertise_their_gpus_and_cpu_pools_none() -> None:
    docs = render(SCENARIOS["gpu-pools"])
    a100 = worker_env(docs, "gpu-a100")
    assert a100["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert env_of(a100)["DIGITS_WORKER_GPUS"] == "auto"  # NVML sees the pod's two GPUs
    assert env_of(worker_env(docs, "gpu"))["DIGITS_WORKER_GPUS"] == "auto"
    default = worker_env(docs, "default")
    assert env_of(default)["DIGITS_WORKER_GPUS"] == "none"
    assert "nvidia.com/gpu" not in default["resources"].get("limits", {})
    # Each pod is its own node: its name, from the downward API.
    [node] = [e for e in a100["env"] if e["name"] == "DIGITS_NODE_NAME"]
    assert node["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_a_pool_may_list_its_devices_and_sharing_is_a_config_value() -> None:
    docs = render(
        {
            "config": {"gpuSharing": True, "nodeHeartbeatSeconds": 5},
            "workers": {"queues": {"gpu": {"gpus": 4, "threads": 4, "gpuDevices": "0,1,2,3"}}},
        }
    )
    assert env_of(worker_env(docs, "gpu"))["DIGITS_WORKER_GPUS"] == "0,1,2,3"
    data = of_kind(docs, "ConfigMap")[0]["data"]
    assert (data["DIGITS_GPU_SHARING"], data["DIGITS_NODE_HEARTBEAT_SECONDS"]) == ("true", "5")
    assert of_kind(render(), "ConfigMap")[0]["data"]["DIGITS_GPU_SHARING"] == "false"


def test_a_malformed_device_list_is_refused() -> None:
    error = render_error({"workers": {"queues": {"gpu": {"gpuDevices": "0, 1;rm"}}}})
    assert "gpuDevices" in error
