"""The shared views of a provenance record, on hand-made records with hand-computed numbers."""

from __future__ import annotations

from vocabulary.provenance import (
    differences,
    passages_per_second,
    steps_per_second,
    summary_line,
    throughput_text,
    tooltip_lines,
)


def _record(torch="2.5.1", device="NVIDIA H100 80GB HBM3", count=1, passages=((600, 2.0), (300, 1.0))) -> dict:
    phases = [{"phase": "training", "seconds": 10.0, "done": 40, "rate": 4.0}]
    phases += [{"phase": f"evaluating set{i}: encoding passages", "seconds": s, "done": n, "rate": None}
               for i, (n, s) in enumerate(passages)]
    return {"software": {"torch": torch, "transformers": "4.46.0", "python": "3.11.7", "hybridscale": "0.1.0"},
            "device": {"name": device, "count": count}, "host": "node1", "phases": phases,
            "peak_rss_mb": 2048.0, "peak_gpu_mb": 10240.0, "data": []}


def test_throughput_is_texts_over_the_seconds_of_every_passage_encoding():
    record = _record()
    assert steps_per_second(record) == 4.0
    assert passages_per_second(record) == 300.0  # (600 + 300) / (2 + 1)
    assert throughput_text(record) == "4 steps/s, 300 passages/s"
    assert passages_per_second(_record(passages=())) is None


def test_the_summary_names_shared_software_and_hardware_and_what_differs():
    same = [_record(), _record()]
    assert summary_line(same) == "all 2 runs on torch 2.5.1, transformers 4.46.0, 1 × NVIDIA H100 80GB HBM3"
    assert summary_line(same[:1]).startswith("the one run on torch 2.5.1")
    mixed = [_record(), _record(torch="2.6.0", device="NVIDIA A100-SXM4-40GB", count=2)]
    assert differences(mixed) == {"torch": ["2.5.1", "2.6.0"], "device": ["NVIDIA H100 80GB HBM3",
                                                                          "NVIDIA A100-SXM4-40GB"],
                                  "devices": [1, 2]}
    assert summary_line(mixed) == ("all 2 runs on transformers 4.46.0; they differ in torch (2.5.1 vs 2.6.0); "
                                   "device (NVIDIA H100 80GB HBM3 vs NVIDIA A100-SXM4-40GB); devices (1 vs 2)")
    assert summary_line([]).startswith("no run has a provenance record")


def test_tooltip_lines_say_software_device_timings_and_memory():
    lines = tooltip_lines(_record())
    assert lines[0] == "hybridscale 0.1.0, torch 2.5.1, transformers 4.46.0"
    assert lines[1] == "1 × NVIDIA H100 80GB HBM3 on node1, Python 3.11.7"
    assert lines[2] == "training 10.0 s, evaluation 3.0 s, 4 steps/s, 300 passages/s"
    assert lines[3] == "peak RAM 2048 MB, peak GPU 10240 MB"
