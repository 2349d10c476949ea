// faiss_shim.cpp: the C API of faiss_shim.h over FAISS 1.7.3; every entry point catches everything it calls.
#include "faiss_shim.h"

#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

struct b4r_index {
    faiss::IndexIDMap* index;   // owns the index the factory made (own_fields)
    // Search settings that FAISS 1.7.3 takes only from fields of the index (IVF fast-scan's nprobe) and the stored
    // defaults: searches share this lock; a search at another setting of such a field, and set_defaults, take it alone.
    mutable std::shared_mutex field_lock;
};

namespace {

thread_local std::string g_last_error;

int fail(int code, const char* what) {
    g_last_error = what ? what : "";
    return code;
}

template <typename F>
int guarded(F&& body) {
    try {
        g_last_error.clear();
        body();
        return B4R_OK;
    } catch (const faiss::FaissException& e) {
        return fail(B4R_ERR_FAISS, e.what());
    } catch (const std::exception& e) {
        return fail(B4R_ERR_STD, e.what());
    } catch (...) {
        return fail(B4R_ERR_UNKNOWN, "unknown C++ exception in FAISS");
    }
}

// The layers of an index made by b4r_index_create: IndexIDMap -> [IndexRefine ->] base (HNSW, IVF, Flat, ...).
struct Layers {
    faiss::IndexRefine* refine;
    faiss::Index* base;
};

Layers layers(const b4r_index* index) {
    faiss::Index* inner = index->index->index;
    auto* refine = dynamic_cast<faiss::IndexRefine*>(inner);
    return {refine, refine ? refine->base_index : inner};
}

// Searches the base index at this call's settings (0 = the index's own).
void search_base(const b4r_index* index, const faiss::Index* base, int64_t n, const float* x, int64_t k, int ef_search,
                 int nprobe, float* distances, int64_t* labels) {
    if (auto* h = dynamic_cast<const faiss::IndexHNSW*>(base); h && ef_search > 0) {
        faiss::SearchParametersHNSW p;
        p.efSearch = ef_search;
        p.check_relative_distance = h->hnsw.check_relative_distance;
        std::shared_lock<std::shared_mutex> lock(index->field_lock);
        base->search(n, x, k, distances, labels, &p);
        return;
    }
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(base); ivf && nprobe > 0 && static_cast<size_t>(nprobe) != ivf->nprobe) {
        if (!dynamic_cast<const faiss::IndexIVFFastScan*>(base)) {
            faiss::SearchParametersIVF p;
            p.nprobe = static_cast<size_t>(nprobe);
            p.max_codes = ivf->max_codes;
            std::shared_lock<std::shared_mutex> lock(index->field_lock);
            base->search(n, x, k, distances, labels, &p);
            return;
        }
        // IVF fast-scan in FAISS 1.7.3 refuses SearchParameters: set the field alone, search, restore.
        auto* mutable_ivf = const_cast<faiss::IndexIVF*>(ivf);
        std::unique_lock<std::shared_mutex> lock(index->field_lock);
        size_t old = mutable_ivf->nprobe;
        mutable_ivf->nprobe = static_cast<size_t>(nprobe);
        try { base->search(n, x, k, distances, labels); } catch (...) { mutable_ivf->nprobe = old; throw; }
        mutable_ivf->nprobe = old;
        return;
    }
    std::shared_lock<std::shared_mutex> lock(index->field_lock);
    base->search(n, x, k, distances, labels);
}

// Re-scores the base's kb candidates per query exactly with the refine index and keeps the k best.
void refine_results(const faiss::IndexRefine* refine, int64_t n, const float* x, int64_t kb, const float* base_distances,
                    const int64_t* base_labels, int64_t k, float* distances, int64_t* labels) {
    (void)base_distances;
    const bool larger_is_better = refine->metric_type == faiss::METRIC_INNER_PRODUCT;
    std::unique_ptr<faiss::DistanceComputer> dc(refine->refine_index->get_distance_computer());
    std::vector<std::pair<float, int64_t>> scored;
    scored.reserve(static_cast<size_t>(kb));
    for (int64_t q = 0; q < n; q++) {
        dc->set_query(x + q * refine->d);
        scored.clear();
        for (int64_t j = 0; j < kb; j++) {
            int64_t label = base_labels[q * kb + j];
            if (label >= 0) scored.emplace_back((*dc)(label), label);
        }
        size_t keep = std::min(static_cast<size_t>(k), scored.size());
        auto better = [larger_is_better](const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
            if (a.first != b.first) return larger_is_better ? a.first > b.first : a.first < b.first;
            return a.second < b.second;
        };
        std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep), scored.end(), better);
        for (int64_t j = 0; j < k; j++) {
            bool has = static_cast<size_t>(j) < keep;
            distances[q * k + j] = has ? scored[j].first : 0.0f;
            labels[q * k + j] = has ? scored[j].second : -1;
        }
    }
}

struct CallbackWriter : faiss::IOWriter {
    b4r_write_fn fn;
    void* context;
    CallbackWriter(b4r_write_fn f, void* c) : fn(f), context(c) { name = "bert4rec stream"; }
    size_t operator()(const void* ptr, size_t size, size_t nitems) override {
        size_t bytes = size * nitems;
        if (bytes == 0) return nitems;
        return fn(context, static_cast<const uint8_t*>(ptr), bytes) == bytes ? nitems : 0;
    }
};

struct CallbackReader : faiss::IOReader {
    b4r_read_fn fn;
    void* context;
    CallbackReader(b4r_read_fn f, void* c) : fn(f), context(c) { name = "bert4rec stream"; }
    size_t operator()(void* ptr, size_t size, size_t nitems) override {
        size_t want = size * nitems, done = 0;
        auto* p = static_cast<uint8_t*>(ptr);
        while (done < want) {
            size_t got = fn(context, p + done, want - done);
            if (got == 0 || got > want - done) break;
            done += got;
        }
        return size ? done / size : 0;
    }
};

}  // namespace

extern "C" {

const char* b4r_last_error(void) { return g_last_error.c_str(); }

int b4r_index_create(const char* factory, int dimension, int metric, int ef_construction, b4r_index** out) {
    if (!factory || !out || dimension <= 0) return fail(B4R_ERR_ARGUMENT, "factory and out must be non-null, dimension > 0");
    if (metric != B4R_METRIC_INNER_PRODUCT && metric != B4R_METRIC_L2) return fail(B4R_ERR_ARGUMENT, "unknown metric");
    if (std::strncmp(factory, "IDMap", 5) == 0)
        return fail(B4R_ERR_ARGUMENT, "leave IDMap out of the factory string: every index is wrapped in an IndexIDMap already");
    *out = nullptr;
    return guarded([&] {
        faiss::MetricType m = metric == B4R_METRIC_INNER_PRODUCT ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        std::unique_ptr<faiss::Index> inner(faiss::index_factory(dimension, factory, m));
        if (ef_construction > 0) {
            faiss::Index* base = inner.get();
            if (auto* r = dynamic_cast<faiss::IndexRefine*>(base)) base = r->base_index;
            if (auto* h = dynamic_cast<faiss::IndexHNSW*>(base)) h->hnsw.efConstruction = ef_construction;
        }
        auto idmap = std::make_unique<faiss::IndexIDMap>(inner.get());
        idmap->own_fields = true;
        inner.release();
        *out = new b4r_index{idmap.release(), {}};
    });
}

int b4r_index_is_trained(const b4r_index* index, int* out) {
    if (!index || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] { *out = index->index->index->is_trained ? 1 : 0; });
}

int b4r_index_train(b4r_index* index, int64_t n, const float* x) {
    if (!index || (n > 0 && !x) || n < 0) return fail(B4R_ERR_ARGUMENT, "null index or vectors, or n < 0");
    return guarded([&] { index->index->train(n, x); });
}

int b4r_index_add(b4r_index* index, int64_t n, const float* x, const int64_t* ids) {
    if (!index || (n > 0 && (!x || !ids)) || n < 0) return fail(B4R_ERR_ARGUMENT, "null index, vectors or ids, or n < 0");
    return guarded([&] {
        if (!index->index->index->is_trained) throw faiss::FaissException("index is not trained: train it before adding vectors");
        std::unique_lock<std::shared_mutex> lock(index->field_lock);
        index->index->add_with_ids(n, x, ids);
    });
}

int b4r_index_search(const b4r_index* index, int64_t n, const float* x, int64_t k, int ef_search, int nprobe,
                     float k_factor, float* distances, int64_t* labels) {
    if (!index || n < 0 || k <= 0 || ef_search < 0 || nprobe < 0 || !(k_factor >= 0) || (n > 0 && (!x || !distances || !labels)))
        return fail(B4R_ERR_ARGUMENT, "null argument, n < 0, k <= 0 or a negative search setting");
    return guarded([&] {
        if (n == 0) return;
        const faiss::IndexIDMap* idmap = index->index;
        if (idmap->ntotal == 0) {
            for (int64_t i = 0; i < n * k; i++) { labels[i] = -1; distances[i] = 0.0f; }
            return;
        }
        // FAISS 1.7.3's IndexIDMap and IndexRefine refuse SearchParameters; their work (the exact re-scoring of the
        // base's candidates, and mapping positions to ids) is done here so the base gets this call's settings.
        Layers l = layers(index);
        if (l.refine) {
            float factor = k_factor > 0 ? k_factor : l.refine->k_factor;
            int64_t kb = std::max<int64_t>(k, static_cast<int64_t>(static_cast<double>(k) * factor));
            kb = std::min<int64_t>(kb, std::max<int64_t>(k, idmap->ntotal));
            std::vector<float> bd(static_cast<size_t>(n * kb));
            std::vector<int64_t> bl(static_cast<size_t>(n * kb));
            search_base(index, l.base, n, x, kb, ef_search, nprobe, bd.data(), bl.data());
            refine_results(l.refine, n, x, kb, bd.data(), bl.data(), k, distances, labels);
        } else {
            search_base(index, l.base, n, x, k, ef_search, nprobe, distances, labels);
        }
        const auto& ids = idmap->id_map;
        for (int64_t i = 0; i < n * k; i++) {
            int64_t pos = labels[i];
            labels[i] = pos >= 0 && static_cast<size_t>(pos) < ids.size() ? ids[static_cast<size_t>(pos)] : -1;
        }
    });
}

int b4r_index_set_defaults(b4r_index* index, int ef_search, int nprobe, float k_factor) {
    if (!index || ef_search < 0 || nprobe < 0 || !(k_factor >= 0)) return fail(B4R_ERR_ARGUMENT, "null index or negative setting");
    return guarded([&] {
        std::unique_lock<std::shared_mutex> lock(index->field_lock);
        Layers l = layers(index);
        if (auto* h = dynamic_cast<faiss::IndexHNSW*>(l.base); h && ef_search > 0) h->hnsw.efSearch = ef_search;
        if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(l.base); ivf && nprobe > 0) ivf->nprobe = static_cast<size_t>(nprobe);
        if (l.refine && k_factor > 0) l.refine->k_factor = k_factor;
    });
}

int b4r_index_ntotal(const b4r_index* index, int64_t* out) {
    if (!index || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] { *out = index->index->ntotal; });
}

int b4r_index_dimension(const b4r_index* index, int* out) {
    if (!index || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] { *out = index->index->d; });
}

int b4r_index_metric(const b4r_index* index, int* out) {
    if (!index || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] {
        *out = index->index->metric_type == faiss::METRIC_INNER_PRODUCT ? B4R_METRIC_INNER_PRODUCT : B4R_METRIC_L2;
    });
}

int b4r_index_write(const b4r_index* index, b4r_write_fn write, void* context) {
    if (!index || !write) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] {
        std::shared_lock<std::shared_mutex> lock(index->field_lock);
        CallbackWriter w(write, context);
        faiss::write_index(index->index, &w);
    });
}

int b4r_index_read(b4r_read_fn read, void* context, b4r_index** out) {
    if (!read || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    *out = nullptr;
    return guarded([&] {
        CallbackReader r(read, context);
        std::unique_ptr<faiss::Index> idx(faiss::read_index(&r));
        auto* idmap = dynamic_cast<faiss::IndexIDMap*>(idx.get());
        if (!idmap) throw faiss::FaissException("the file is a FAISS index without ids (expected an IndexIDMap around the index)");
        if (idmap->id_map.size() != static_cast<size_t>(idmap->ntotal))
            throw faiss::FaissException("the IndexIDMap holds " + std::to_string(idmap->id_map.size()) + " ids for " +
                                        std::to_string(idmap->ntotal) + " vectors");
        idx.release();
        *out = new b4r_index{idmap, {}};
    });
}

void b4r_index_free(b4r_index* index) {
    if (!index) return;
    try {
        delete index->index;
    } catch (...) {
    }
    delete index;
}

int b4r_set_omp_threads(int threads) {
    if (threads < 1) return fail(B4R_ERR_ARGUMENT, "threads must be >= 1");
    return guarded([&] { omp_set_num_threads(threads); });
}

}  // extern "C"
