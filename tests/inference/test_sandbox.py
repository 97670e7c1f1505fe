"""The model process of the inference server is a sandbox like a job process.

The hostile network of ``tests/mlmodels/test_sandbox.py`` (every probe: the environment,
``/proc``, the secret key, the database, the store, the node's files) is loaded by the
inference server, as a model with custom network code is: its ``build_model`` runs in the
model process, whose output the server logs. Every probe must run and none leak — while
the server itself (this test process) holds the database URL, the S3 keys and the secret
key — and the model still answers.
"""

import os
import re

import pytest

from apps.core.storage import get_store
from apps.inference.service import status
from tests.conftest import database_url, grant_custom_code, wait_until
from tests.inference.helpers import SHAPE, make_dataset, save_snapshot
from tests.mlmodels.test_sandbox import HOSTILE, PROBES

pytestmark = [pytest.mark.tensorflow, pytest.mark.timeout(600)]

#: The hostile code's model with layer names of its own, so this test can write its weights.
NAMED = (
    "keras.Input(input_shape), layers.Flatten(name='flat'),\n"
    "            layers.Dense(num_classes, activation='softmax', name='out'),\n"
    "        ], name='net')"
)


def hostile_code(settings, data_root) -> tuple[str, str]:
    other_key = "datasets/999999/private-labels.txt"
    get_store().put(other_key, b"someone else's labels")
    password = database_url().rsplit("@", 1)[0].rsplit(":", 1)[-1]
    s3 = settings.DIGITS_S3 or {}
    known = [settings.SECRET_KEY, s3.get("access_key"), s3.get("secret_key"), database_url()]
    known += [password] if len(password) > 3 else []
    code = HOSTILE.format(
        secrets=[s for s in known if s], worker_data=str(settings.DATA_DIR),
        database_url=database_url(), other_key=other_key, data_root=str(data_root),
    )  # fmt: skip
    code = re.sub(r"keras\.Input\(input_shape\), layers\.Flatten\(\),.*?\]\)", NAMED, code,
                  flags=re.S)  # fmt: skip
    assert "name='net'" in code
    return code, other_key


def weights_like_the_hostile_network():
    import keras
    from keras import layers

    inputs = keras.Input(SHAPE, name="image")
    net = keras.Sequential([keras.Input(SHAPE), layers.Flatten(name="flat"),
                            layers.Dense(10, activation="softmax", name="out")], name="net")  # fmt: skip
    return keras.Model(inputs, net(layers.Rescaling(1 / 255.0, name="scale")(inputs)), name="net")


def test_a_hostile_network_in_the_model_process_reaches_nothing(
    people, api_client, settings, tmp_path, caplog, inference_server
):
    from apps.jobs.models import Job
    from apps.mlmodels.models import TrainedModel

    data_root = (tmp_path / "root").resolve()
    data_root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [data_root]
    code, other_key = hostile_code(settings, data_root)
    owner = grant_custom_code(people.owner)
    train = Job.objects.create(owner=owner, kind="model.train", name="train", status="done")
    model = TrainedModel.objects.create(
        owner=owner, name="hostile", dataset=make_dataset(owner), status="ready", job=train,
        network={"source": "custom", "code": code}, best_epoch=1,
        solver={"mean_subtraction": "none", "augmentation": {}},
    )  # fmt: skip
    network = weights_like_the_hostile_network()
    save_snapshot(model.pk, 1, network)

    caplog.set_level("INFO", logger="apps.inference.host")
    reply = api_client.as_user(owner).post(
        f"/api/v1/models/{model.pk}/classify/", {"index": 0}, format="json"
    )
    assert reply.status_code == 200, reply.content  # the model still answers

    def probes():
        lines = [
            r.getMessage().split(": ", 1)[1] for r in caplog.records if "PROBE " in r.getMessage()
        ]
        return lines if len(lines) >= len(PROBES) else None

    lines = wait_until(probes, timeout=30, message="not every probe reported")
    print("\n".join(lines))
    results = {line.split()[1]: line for line in lines}
    assert sorted(results) == sorted(PROBES), lines
    leaked = [line for line in lines if " LEAK" in line]
    assert not leaked, leaked
    assert get_store().get(other_key) == b"someone else's labels"
    for folder in ("/tmp", str(settings.DATA_DIR), str(data_root)):
        assert not os.path.exists(os.path.join(folder, "pwned")), folder
    [process] = status()["processes"]
    assert process["group"] == f"code-{owner.pk}"  # not the process other users' models share
