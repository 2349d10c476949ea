// Index files are plain FAISS files: FAISS's own reader (python faiss.read_index, Debian's python3-faiss 1.7.3, the
// same FAISS as our shim, installed by scripts/setup.sh) loads what ItemIndex.Save wrote, and searching it gives our ids
// and, through the manifest's description (the reduction constant M2), our scores.
using System.Diagnostics;
using System.Text.Json;

namespace Bert4Rec.Retrieval.Tests;

public class FaissReaderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-faissread-");
    public void Dispose() => _dir.Delete(true);

    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import json, sys
        import numpy as np
        import faiss
        path, qpath, k, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        index = faiss.read_index(path)
        q = np.fromfile(qpath, dtype="<f4").reshape(-1, d)
        D, I = index.search(np.ascontiguousarray(q), k)
        print(json.dumps({"type": type(index).__name__, "ntotal": int(index.ntotal), "d": int(index.d),
                          "metric": int(index.metric_type), "ids": I.tolist(), "distances": D.tolist()}))
        """;

    private sealed record FaissAnswer(string Type, long Ntotal, int D, int Metric, long[][] Ids, float[][] Distances);

    /// <summary>Runs FAISS's python reader over <paramref name="path"/> with queries already in the index's own space.</summary>
    private FaissAnswer ReadWithFaiss(string path, float[] nativeQueries, int nativeDim, int k)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: run scripts/setup.sh (it installs python3-faiss)");
        string script = Path.Combine(_dir.FullName, "read.py"), qpath = Path.Combine(_dir.FullName, "queries.f32");
        File.WriteAllText(script, Script);
        File.WriteAllBytes(qpath, System.Runtime.InteropServices.MemoryMarshal.AsBytes(nativeQueries.AsSpan()).ToArray());
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, path, qpath, k.ToString(), nativeDim.ToString() }) psi.ArgumentList.Add(arg);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"python faiss.read_index failed ({p.ExitCode}); is python3-faiss installed (scripts/setup.sh)? {stderr.Result}");
        return JsonSerializer.Deserialize<FaissAnswer>(stdout, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;
    }

    [Theory]
    [InlineData("Flat")]
    [InlineData("HNSW32")]
    [InlineData("IVF32,PQ8x4,RFlat")]
    public void A_written_index_loads_with_faiss_own_reader_and_gives_our_ids_and_scores(string factory)
    {
        const int n = 4000, dim = 15, k = 20, nq = 8;
        var (v, _) = ItemIndexTests.Clustered(n, dim, 21);
        var ids = Enumerable.Range(0, n).Select(i => 1000L + 7L * i).ToArray();     // not positions: FAISS must return these
        var (queries, _) = ItemIndexTests.Clustered(nq, dim, 22);
        string path = Path.Combine(_dir.FullName, "items.faiss");
        using var index = ItemIndex.Build(v, ids, dim, factory);
        var ours = index.Search(queries, nq, k);
        index.Save(path);

        // the query in the FAISS index's space: [q, 0] under the reduction, q itself otherwise
        var d = index.Description;
        var native = new float[nq * d.NativeDimension];
        var qnorm = new float[nq];
        for (int q = 0; q < nq; q++)
        {
            queries.AsSpan(q * dim, dim).CopyTo(native.AsSpan(q * d.NativeDimension));
            qnorm[q] = System.Numerics.Tensors.TensorPrimitives.SumOfSquares(queries.AsSpan(q * dim, dim));
        }
        var faiss = ReadWithFaiss(path, native, d.NativeDimension, k);

        Assert.Equal("IndexIDMap", faiss.Type);
        Assert.Equal(n, faiss.Ntotal);
        Assert.Equal(d.NativeDimension, faiss.D);
        Assert.Equal(d.NativeMetric == IndexMetric.InnerProduct ? 0 : 1, faiss.Metric);   // faiss.METRIC_INNER_PRODUCT = 0, METRIC_L2 = 1
        Assert.Equal(factory != "Flat", d.MipsM2 > 0);
        for (int q = 0; q < nq; q++)
        {
            Assert.Equal(ours[q].Select(x => x.Id), faiss.Ids[q]);
            for (int j = 0; j < k; j++)
            {
                float score = index.ScoreOf(faiss.Distances[q][j], qnorm[q]);
                Assert.True(Math.Abs(score - ours[q][j].Score) <= 1e-3f * Math.Max(1f, Math.Abs(score)), $"query {q} rank {j}: FAISS gives {score}, we {ours[q][j].Score}");
            }
        }
    }
}
