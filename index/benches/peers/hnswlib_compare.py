"""hnswlib on the same vectors as `examples/ann_tune.rs --dump PREFIX`: build time on all cores,
recall@10 and one-thread queries/s per ef. Usage: python hnswlib_compare.py PREFIX DIM M EFC [SPACES]
(SPACES: comma-separated, default "l2,ip"; THREADS in the environment sets the build threads, default 2)"""
import os
import sys, time
import numpy as np
import hnswlib

prefix, dim, m, efc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = np.fromfile(prefix + ".base.f32", dtype="<f4").reshape(-1, dim)
query = np.fromfile(prefix + ".query.f32", dtype="<f4").reshape(-1, dim)
truth = np.argsort(-(query @ base.T), axis=1)[:, :10]
spaces = sys.argv[5].split(",") if len(sys.argv) > 5 else ["l2", "ip"]
threads = int(os.environ.get("THREADS", "2"))
for space in spaces:
    p = hnswlib.Index(space=space, dim=dim)
    p.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=1)
    p.set_num_threads(threads)
    t = time.time()
    p.add_items(base, np.arange(len(base)))
    print(f"hnswlib space={space} n={len(base)} M={m} efc={efc} build({threads} threads)={time.time() - t:.2f} s")
    p.set_num_threads(1)
    for ef in [10, 16, 24, 32, 48, 64, 96, 128]:
        p.set_ef(ef)
        t = time.time()
        labels, _ = p.knn_query(query, k=10)
        qps = len(query) / (time.time() - t)
        rec = np.mean([len(set(labels[i]) & set(truth[i])) / 10 for i in range(len(query))])
        print(f"  ef={ef:4} recall@10={rec:.4f} q/s(1 thread)={qps:.0f}")
