// faiss_shim.cpp: the C API of faiss_shim.h over FAISS 1.7.3; every entry point catches everything it calls.
#include "faiss_shim.h"

#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

struct b4r_index {
    faiss::Index* index;
    // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW and reads hnsw.efSearch, a field shared by all
    // callers: searches at the index's own efSearch share this lock; a search at another efSearch takes it alone,
    // sets the field, searches and restores it.
    mutable std::shared_mutex ef_lock;
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

}  // namespace

extern "C" {

const char* b4r_last_error(void) { return g_last_error.c_str(); }

int b4r_index_create(const char* factory, int dimension, int metric, int ef_construction, b4r_index** out) {
    if (!factory || !out || dimension <= 0) return fail(B4R_ERR_ARGUMENT, "factory and out must be non-null, dimension > 0");
    if (metric != B4R_METRIC_INNER_PRODUCT && metric != B4R_METRIC_L2) return fail(B4R_ERR_ARGUMENT, "unknown metric");
    *out = nullptr;
    return guarded([&] {
        faiss::MetricType m = metric == B4R_METRIC_INNER_PRODUCT ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        std::unique_ptr<faiss::Index> idx(faiss::index_factory(dimension, factory, m));
        if (ef_construction > 0) {
            if (auto* h = dynamic_cast<faiss::IndexHNSW*>(idx.get())) h->hnsw.efConstruction = ef_construction;
        }
        *out = new b4r_index{idx.release(), {}};
    });
}

int b4r_index_is_trained(const b4r_index* index, int* out) {
    if (!index || !out) return fail(B4R_ERR_ARGUMENT, "null argument");
    return guarded([&] { *out = index->index->is_trained ? 1 : 0; });
}

int b4r_index_train(b4r_index* index, int64_t n, const float* x) {
    if (!index || (n > 0 && !x) || n < 0) return fail(B4R_ERR_ARGUMENT, "null index or vectors, or n < 0");
    return guarded([&] { index->index->train(n, x); });
}

int b4r_index_add(b4r_index* index, int64_t n, const float* x) {
    if (!index || (n > 0 && !x) || n < 0) return fail(B4R_ERR_ARGUMENT, "null index or vectors, or n < 0");
    return guarded([&] {
        if (!index->index->is_trained) throw faiss::FaissException("index is not trained: train it before adding vectors");
        index->index->add(n, x);
    });
}

int b4r_index_search(const b4r_index* index, int64_t n, const float* x, int64_t k, int ef_search, int nprobe,
                     float* distances, int64_t* labels) {
    if (!index || n < 0 || k <= 0 || (n > 0 && (!x || !distances || !labels)))
        return fail(B4R_ERR_ARGUMENT, "null argument, n < 0 or k <= 0");
    return guarded([&] {
        if (n == 0) return;
        faiss::Index* target = index->index;
        if (target->ntotal == 0) {
            for (int64_t i = 0; i < n * k; i++) { labels[i] = -1; distances[i] = 0.0f; }
            return;
        }
        // Look through a refine wrapper to the index that takes the search-time settings.
        faiss::Index* inner = target;
        if (auto* r = dynamic_cast<faiss::IndexRefine*>(inner)) inner = r->base_index;
        if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(inner)) {
            if (nprobe > 0 && inner == target) {
                faiss::SearchParametersIVF p;
                p.nprobe = static_cast<size_t>(nprobe);
                p.max_codes = ivf->max_codes;
                target->search(n, x, k, distances, labels, &p);
                return;
            }
            if (nprobe > 0 && static_cast<size_t>(nprobe) != ivf->nprobe) {
                std::unique_lock<std::shared_mutex> lock(index->ef_lock);
                size_t old = ivf->nprobe;
                ivf->nprobe = static_cast<size_t>(nprobe);
                try { target->search(n, x, k, distances, labels); } catch (...) { ivf->nprobe = old; throw; }
                ivf->nprobe = old;
                return;
            }
        }
        if (auto* h = dynamic_cast<faiss::IndexHNSW*>(inner)) {
            if (ef_search > 0 && ef_search != h->hnsw.efSearch) {
                std::unique_lock<std::shared_mutex> lock(index->ef_lock);
                int old = h->hnsw.efSearch;
                h->hnsw.efSearch = ef_search;
                try { target->search(n, x, k, distances, labels); } catch (...) { h->hnsw.efSearch = old; throw; }
                h->hnsw.efSearch = old;
                return;
            }
        }
        std::shared_lock<std::shared_mutex> lock(index->ef_lock);
        target->search(n, x, k, distances, labels);
    });
}

/* Sets the index's own search-time defaults (efSearch for HNSW, nprobe for IVF); 0 leaves a setting as it is. */
int b4r_index_set_defaults(b4r_index* index, int ef_search, int nprobe) {
    if (!index || ef_search < 0 || nprobe < 0) return fail(B4R_ERR_ARGUMENT, "null index or negative setting");
    return guarded([&] {
        std::unique_lock<std::shared_mutex> lock(index->ef_lock);
        faiss::Index* inner = index->index;
        if (auto* r = dynamic_cast<faiss::IndexRefine*>(inner)) inner = r->base_index;
        if (auto* h = dynamic_cast<faiss::IndexHNSW*>(inner); h && ef_search > 0) h->hnsw.efSearch = ef_search;
        if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(inner); ivf && nprobe > 0) ivf->nprobe = static_cast<size_t>(nprobe);
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

int b4r_index_serialize(const b4r_index* index, uint8_t** data, size_t* size) {
    if (!index || !data || !size) return fail(B4R_ERR_ARGUMENT, "null argument");
    *data = nullptr;
    *size = 0;
    return guarded([&] {
        faiss::VectorIOWriter w;
        faiss::write_index(index->index, &w);
        auto* buf = static_cast<uint8_t*>(std::malloc(w.data.size() ? w.data.size() : 1));
        if (!buf) throw std::bad_alloc();
        std::memcpy(buf, w.data.data(), w.data.size());
        *data = buf;
        *size = w.data.size();
    });
}

void b4r_buffer_free(uint8_t* data) { std::free(data); }

int b4r_index_deserialize(const uint8_t* data, size_t size, b4r_index** out) {
    if (!data || !out || size == 0) return fail(B4R_ERR_ARGUMENT, "null or empty buffer");
    *out = nullptr;
    return guarded([&] {
        faiss::VectorIOReader r;
        r.data.assign(data, data + size);
        std::unique_ptr<faiss::Index> idx(faiss::read_index(&r));
        *out = new b4r_index{idx.release(), {}};
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
