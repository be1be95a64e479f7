"""The approximate index path agrees with brute force, and its category filter is exact."""

import numpy as np
import pytest

from qvi_app.index import Filters, IndexItem, Length, ReferenceIndex
from qvi_app.index.ann import SELECTORS_KEPT, AnnSettings, IvfIndex
from qvi_app.index.store import write_index

N, D = 3000, 64
CATEGORIES = ["doors", "rain", "birds", "engines", "glass"]
LENGTHS = [0.3, 0.9, 1.0, 2.5, 3.0, 8.0, 30.0]      # seconds; a sound's length and category vary apart


def clustered(n, d, rng):
    centres = rng.standard_normal((60, d)).astype(np.float32)
    x = centres[rng.integers(len(centres), size=n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    rng = np.random.default_rng(3)
    emb = clustered(N, D, rng)
    items = [IndexItem(f"s{i:05d}.wav", CATEGORIES[i % 5], LENGTHS[i % 7], 16000, 100, 0.0, f"{i:064x}")
             for i in range(N)]
    encoder = {"id": "synthetic/1/0", "name": "synthetic", "version": "1", "dim": D}
    out = {}
    for name, threshold in (("exact", 10**9), ("ann", 500)):
        d = tmp_path_factory.mktemp(name)
        write_index(d, encoder=encoder, library_root=d, items=items, embeddings=emb, skipped=[],
                    ann=AnnSettings(threshold=threshold, filter_min=500))
        out[name] = ReferenceIndex.open(d)
    queries = emb[rng.choice(N, 40, replace=False)] + 0.05 * rng.standard_normal((40, D)).astype(np.float32)
    return out["exact"], out["ann"], queries / np.linalg.norm(queries, axis=1, keepdims=True)


def test_only_large_libraries_get_an_approximate_index(indexes):
    exact, ann, _ = indexes
    assert exact.ann is None and ann.ann is not None and ann.ann.ntotal == N
    assert (ann.gen_dir / "ann.faiss").is_file() and not (exact.gen_dir / "ann.faiss").exists()
    # compressed codes, not a second copy of the float matrix: what makes 10M sounds fit in RAM
    assert ann.ann.memory_bytes() < exact.embeddings.nbytes / 5
    assert not (ann.gen_dir / IvfIndex.REFINE_FILE).exists()     # below AnnSettings.refine_threshold
    assert (ann.gen_dir / "ann.faiss").stat().st_size < exact.embeddings.nbytes / 3   # codebooks included


def test_approximate_search_finds_the_same_best_match(indexes):
    exact, ann, queries = indexes
    recall = []
    for q in queries:
        e, a = exact.search(q, top_k=10), ann.search(q, top_k=10)
        assert a[0].relpath == e[0].relpath and a[0].score == pytest.approx(e[0].score, abs=1e-5)
        assert [h.rank for h in a] == list(range(1, 11)) and all(x.score >= y.score for x, y in zip(a, a[1:]))
        recall.append(len({h.relpath for h in a} & {h.relpath for h in e}) / 10)
    assert np.mean(recall) >= 0.98


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_filter_is_exact_in_both_paths(indexes, category):
    exact, ann, queries = indexes
    n_cat = exact.categories()[category]
    assert n_cat >= ann.ann.settings.filter_min == 500  # the approximate path is the one used for the category
    for q in queries[:10]:
        e, a = exact.search(q, Filters(category), top_k=15), ann.search(q, Filters(category), top_k=15)
        assert len(e) == len(a) == 15
        assert {h.category for h in e} == {h.category for h in a} == {category}
        assert a[0].relpath == e[0].relpath


@pytest.mark.parametrize("name", ["s01", "S012", "s0"])
def test_name_filter_is_exact_in_both_paths(indexes, name):
    """A name filter keeping 1,000 or more sounds takes the approximate path, as a large category
    does; it finds the same best match as brute force over the same sounds, and only them."""
    exact, ann, queries = indexes
    for q in queries[:10]:
        e, a = exact.search(q, Filters(name=name), top_k=15), ann.search(q, Filters(name=name), top_k=15)
        assert len(e) == len(a) == 15
        assert all(name.casefold() in h.relpath for h in e + a)
        assert a[0].relpath == e[0].relpath
    assert {cat for cat, _ in ann.ann._selectors} <= set(CATEGORIES)  # typed words do not pile up in its cache


@pytest.mark.parametrize("length", [Length(None, 1.0), Length(1.0, 3.0), Length(3.0, None)])
def test_length_filter_is_exact_in_both_paths(indexes, length):
    """A length filter keeping 500 or more sounds takes the approximate path; alone or with a
    category, every hit lasts that long, and the best match is brute force's."""
    exact, ann, queries = indexes
    for category in (None, "rain"):
        filters = Filters(category, length=length)
        if category is None:            # the approximate path (with a category, fewer: brute force)
            assert len(exact.kept_rows(filters)) >= ann.ann.settings.filter_min
        for q in queries[:10]:
            e, a = exact.search(q, filters, top_k=15), ann.search(q, filters, top_k=15)
            assert len(e) == len(a) == 15 and a[0].relpath == e[0].relpath
            assert all(length.holds(h.duration) and h.category == (category or h.category) for h in e + a)
    assert 1.0 not in {h.duration for h in exact.search(queries[0], Filters(length=Length(None, 1.0)), top_k=3000)}


def test_keeps_answers_for_a_few_rows_as_kept_rows_does_for_all(indexes):
    """The rated sounds' test (is each kept?) agrees with the rows the filters keep."""
    exact, _, _ = indexes
    rows = np.random.default_rng(5).choice(N, 200, replace=False)
    for filters in (Filters("rain"), Filters(length=Length(1.0, 3.0)), Filters(name="s01"),
                    Filters("birds", "s0", Length(None, 2.6)), Filters("glass", "nothing holds this")):
        assert list(exact.keeps(filters, rows)) == list(np.isin(rows, exact.kept_rows(filters)))
    assert exact.keeps(Filters(), rows).all() and exact.keeps(Filters("rain"), []).shape == (0,)


def test_the_selector_cache_keeps_a_few_filtered_sets(indexes):
    """Each category, each length and each category crossed with a length is another set; only
    the last few are kept (each holds its rows: tens of MB in a large library)."""
    _, ann, queries = indexes
    lengths = [Length(None, 3.0), Length(1.0, None), Length(0.5, None), Length(None, 9.0)]
    for f in [Filters(c) for c in CATEGORIES] + [Filters(length=n) for n in lengths]:
        assert len(ann.search(queries[0], f, top_k=5)) == 5
    assert len(ann.ann._selectors) == SELECTORS_KEPT == 8
    assert (None, lengths[-1]) in ann.ann._selectors and ("doors", None) not in ann.ann._selectors


def test_the_shortlist_grows_with_the_library_within_bounds():
    """A fixed shortlist is a shrinking share of a growing library; on real embeddings the rows
    needed for recall@10 0.95 grew with it (AnnSettings), so the shortlist is a share of N."""
    from qvi_app.index.ann import IvfIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for share, most, expected in ((0.01, 1000, 100), (0.1, 1000, 400), (0.5, 1000, 1000)):
        ann = IvfIndex.build(x, AnnSettings(threshold=0, shortlist=100, shortlist_share=share, shortlist_max=most))
        assert ann.shortlist == expected
        rows, _ = ann.search(x[0], ann.shortlist)
        assert 0 in rows and len(rows) <= expected


def test_a_shortlist_scored_block_by_block_scores_as_the_whole_library(indexes, monkeypatch):
    """Long shortlists are gathered from the memory map in blocks (store.GATHER_BLOCK): the scores
    are those of the rows gathered at once, in the rows' order, across block edges, and those of
    the whole library to rounding (a matrix-vector product of another shape sums in another order)."""
    from qvi_app.index import store

    exact, _, queries = indexes
    rows = np.sort(np.random.default_rng(5).choice(N, 2500, replace=False))
    got = {}
    for block in (10**9, 1024, 7):
        monkeypatch.setattr(store, "GATHER_BLOCK", block)
        got[block] = exact.scores(queries[0], rows)
        # a large library's rows are read by several threads: the same rows in the same order
        got[block, "parallel"] = store._gathered(exact.embeddings, rows, lambda m: store._scores(m, queries[0]),
                                                 parallel=True)
    whole = exact.scores(queries[0])[rows]
    for block in got:
        np.testing.assert_allclose(got[block], whole, atol=1e-6)
    assert np.array_equal(store._read_in_parallel(exact.embeddings, rows), exact.embeddings[rows])


def test_codes_are_scored_against_the_uncentred_query():
    """The index stores rows centred on the library's mean; scored against a centred query they
    would rank by x.q - m.x (a bias towards rows far from the mean). With codes fine enough to be
    nearly exact (one PCA dimension per byte), each approximate score must be the true cosine
    minus one constant per query: its spread over the shortlist stays at the codes' error."""
    rng = np.random.default_rng(7)
    d = 16
    x = rng.standard_normal(d).astype(np.float32) + rng.standard_normal((10_000, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ann = IvfIndex.build(x, AnnSettings(threshold=0, reduced_dim=d, dims_per_byte=1))
    for q in x[:10]:
        rows, approx = ann.search(q, 200)
        assert len(rows) == 200
        assert np.std(approx - x[rows] @ q) < 0.01      # centred queries: about 0.06 here


def test_refining_codes_keep_the_best_of_the_shortlist(tmp_path):
    """The refining codes (one byte per PCA dimension, uncentred) score a shortlist finely enough
    to keep its best rows: their scores are the true cosines to the codes' rounding, the rows kept
    are the shortlist's exact best, and they survive saving and loading."""
    rng = np.random.default_rng(11)
    x = clustered(8000, 32, rng)
    ann = IvfIndex.build(x, AnnSettings(threshold=0, refine_threshold=0, reduced_dim=32))
    ann.save(tmp_path / IvfIndex.FILE)
    assert np.load(tmp_path / IvfIndex.REFINE_FILE).shape == (8000, 32)
    loaded = IvfIndex.load(tmp_path / IvfIndex.FILE)
    overlap = []
    for q in x[rng.choice(8000, 20, replace=False)]:
        shortlist, _ = ann.search(q, 1000)
        for index in (ann, loaded):
            rows, approx = index.search(q, 1000, keep=50)
            assert len(rows) == 50 and set(rows) <= set(shortlist)
            assert np.all(np.diff(approx) <= 0)                         # best first
            np.testing.assert_allclose(approx, x[rows] @ q, atol=0.02)
        exact_best = shortlist[np.argsort(-(x[shortlist] @ q))[:50]]
        overlap.append(len(np.intersect1d(rows, exact_best)) / 50)
        assert rows[0] == exact_best[0]
    assert np.mean(overlap) >= 0.9


def test_an_index_without_refining_codes_still_shortlists(tmp_path):
    """Indexes written before the refining codes existed load and search as before."""
    rng = np.random.default_rng(12)
    x = clustered(3000, 32, rng)
    IvfIndex.build(x, AnnSettings(threshold=0, refine_threshold=0)).save(tmp_path / IvfIndex.FILE)
    (tmp_path / IvfIndex.REFINE_FILE).unlink()
    (tmp_path / IvfIndex.RANGE_FILE).unlink()
    old = IvfIndex.load(tmp_path / IvfIndex.FILE)
    rows, _ = old.search(x[0], 300, keep=50)
    assert len(rows) == 300 and 0 in rows


@pytest.fixture(scope="module")
def refined(tmp_path_factory, indexes):
    """The ``indexes`` library again, with refining codes (their threshold lowered to its size)."""
    exact, _, queries = indexes
    d = tmp_path_factory.mktemp("refined")
    items = [exact.items[i] for i in range(len(exact))]
    write_index(d, encoder={"id": "synthetic/1/0", "name": "synthetic", "version": "1", "dim": D}, library_root=d,
                items=items, embeddings=np.asarray(exact.embeddings), skipped=[],
                ann=AnnSettings(threshold=500, filter_min=500, refine_threshold=500, refine_keep=20, shortlist=600))
    return exact, ReferenceIndex.open(d), queries


def test_a_library_with_refining_codes_finds_what_brute_force_finds(refined):
    """From ``refine_threshold`` sounds up the shortlist (600 rows here) is cut in RAM (to 50 x
    the results asked for) before exact scoring: the results still match brute force."""
    exact, index, queries = refined
    assert (index.gen_dir / IvfIndex.REFINE_FILE).is_file() and index.ann.refines
    from qvi_app.index.store import describe

    assert describe(index)["search"].startswith("approximate: PCA") and "refining codes" in describe(index)["search"]
    assert describe(exact)["search"].startswith("exact")
    recall = []
    for q in queries:
        e, a = exact.search(q, top_k=5), index.search(q, top_k=5)
        assert a[0].relpath == e[0].relpath and a[0].score == pytest.approx(e[0].score, abs=1e-5)
        recall.append(len({h.relpath for h in a} & {h.relpath for h in e}) / 5)
        c = index.search(q, Filters("rain"), top_k=5)
        assert [h.relpath for h in c] == [h.relpath for h in exact.search(q, Filters("rain"), top_k=5)]
    assert np.mean(recall) >= 0.98


def test_the_cut_subtracts_what_the_exact_scores_subtract():
    """A ranking that subtracts a per-sound penalty must keep the rows that are best *after* it:
    rows with a large offset drop out of the cut however close they are to the query."""
    rng = np.random.default_rng(13)
    x = clustered(6000, 32, rng)
    ann = IvfIndex.build(x, AnnSettings(threshold=0, refine_threshold=0, reduced_dim=32))
    q = x[0]
    shortlist, _ = ann.search(q, 1000)
    plain, _ = ann.search(q, 1000, keep=50)
    offsets = np.zeros(len(x), np.float32)
    offsets[plain[:25]] = 1.0                     # the 25 closest are penalised out of reach
    rows, scores = ann.search(q, 1000, keep=50, offsets=offsets)
    assert not set(rows) & set(plain[:25])
    best = shortlist[np.argsort(-(x[shortlist] @ q - offsets[shortlist]))[:50]]
    assert len(np.intersect1d(rows, best)) >= 45
    np.testing.assert_allclose(scores, x[rows] @ q - offsets[rows], atol=0.02)


def test_refining_codes_that_do_not_fit_are_a_damaged_index(refined, tmp_path):
    """Refining codes of another size are refused at open with the rebuild hint, not used to
    index past the end of the codes."""
    import shutil

    _, index, _ = refined
    copy = tmp_path / "copy"
    shutil.copytree(index.index_dir, copy)
    codes = next(copy.glob("gen-*")) / IvfIndex.REFINE_FILE
    np.save(codes, np.load(codes)[:-10])
    with pytest.raises(Exception, match="damaged .its refining codes do not fit.*rebuild it with qvi index"):
        ReferenceIndex.open(copy)
