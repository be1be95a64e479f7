"""The benchmark's yardsticks are computed correctly (its speed figures are not tested)."""

import torch

from qvi_app.bench.limits import conv_flops
from qvi_app.encoders.cnn_model import SfxCNN


def test_conv_flops_counts_multiply_adds_twice():
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    assert conv_flops(conv, torch.zeros(1, 2, 10, 10)) == 2 * (2 * 9) * (4 * 10 * 10)


def test_cnn_flops_grow_with_the_query_length():
    model = SfxCNN(base_channels=8).eval()
    short, long = (conv_flops(model, torch.zeros(1, 1, t, 96)) for t in (128, 256))
    assert long == 2 * short
    first_layer = 2 * 9 * 8 * 128 * 96
    assert short > first_layer


def test_scale_bench_measures_a_synthetic_library_end_to_end(tmp_path):
    """``qvi bench --scale``: a real index is written from synthetic embeddings, searched by real
    ``qvi search`` processes, and every figure a goal names comes back (speeds are not judged)."""
    from qvi_app.bench.scale import bench_scale, format_scale

    row = bench_scale(3000, work=tmp_path, runs=3)
    assert row["references"] == 3000 and row["dim"] == 1024 and not row["approximate"]   # exact below 100k
    assert row["recall_at_10"] == 1.0                                  # the exact search is the definition
    for key in ("build_s", "build_peak_rss_gb", "index_disk_gb", "cold_call_s", "cold_call_peak_rss_gb",
                "warm_median_ms", "category_median_ms", "name_first_median_ms", "name_median_ms", "length_first_ms", "length_median_ms", "rerank_median_ms",
                "similar_median_ms", "facets_median_ms"):
        assert row[key] > 0, key
    assert 0.05 < row["cold_call_peak_rss_gb"] < 3                     # its own process, not this one
    assert list(tmp_path.iterdir()) == []                              # the temporary index is gone
    table = format_scale([row]).splitlines()
    assert len(table) == 3 and table[2].startswith("| 3,000 | 1024 |") and table[0].count("|") == table[2].count("|")


def test_query_bench_runs_on_the_default_encoder(tmp_path):
    """``qvi bench`` timed the CNN through attributes the default (fused ``qvi``) encoder does not
    have and stopped at its first row; each stage is now timed on the encoder's parts."""
    from qvi_app.bench.run import BenchConfig, bench_query

    limits = {"memory_bandwidth_Bps": 1e10, "matmul_flops": 1e11}
    rows = bench_query(BenchConfig(runs=2, query_seconds=(2.0,), reference_counts=(1000,)), limits, tmp_path)
    (row,) = rows
    assert row["references"] == 1000 and row["path"] == "exact" and row["encoder_gflop"] > 0
    assert 0 < row["encoder_median_ms"] <= row["total_median_ms"]


def test_ranking_bench_times_the_approximate_path_as_a_search_runs_it():
    """It had timed the compressed index alone (recall@10 0.28); a search scores the shortlist exactly."""
    from qvi_app.bench.run import BenchConfig, bench_ranking

    (row,) = bench_ranking(BenchConfig(ranking_counts=(10_000,)), {"memory_bandwidth_Bps": 1e10, "matmul_flops": 1e11})
    assert row["references"] == 10_000 and row["ann_recall_at_10"] >= 0.99 and row["ann_MB"] < row["brute_f32_MB"]


def test_adapter_bench_learns_from_300_rated_queries_and_reports_its_time():
    from qvi_app.bench.run import BenchConfig, bench_adapter, format_table

    row = bench_adapter(BenchConfig())
    assert row["rated_queries"] == 300 and row["references"] == 10_000 and row["seconds"] > 0
    startup = {"window_ready_s": 1.0, "import_and_load_s": 1.0, "import_to_first_query_s": 1.0}
    table = format_table({"query": [], "indexing": [], "ranking": [], "adapter": row, "startup": startup})
    assert "learning an adapter (`qvi adapt`)" in table and "300 rated queries" in table


def test_where_bench_times_the_scan_of_long_sounds():
    from qvi_app.bench.run import BenchConfig, bench_where, format_table

    rows = bench_where(BenchConfig(quick=True))
    assert [r["sound_s"] for r in rows] == [10, 30, 60] and all(r["seconds"] > 0 for r in rows)
    assert rows[1]["windows"] > rows[0]["windows"]                       # 30 s: more windows than 10 s
    startup = {"window_ready_s": 1.0, "import_and_load_s": 1.0, "import_to_first_query_s": 1.0}
    table = format_table({"query": [], "indexing": [], "ranking": [], "where": rows, "startup": startup})
    assert "where a 2 s query matches in a long sound" in table and "60 s of sound in" in table
