// The negatives of the sampled objectives (issue 16): K items per optimizer step, shared by every prediction of the batch,
// drawn with replacement uniformly or by training-set popularity, seeded by the step so a resumed run draws the same.
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Kernels;
using Bert4Rec.Training.Model;

namespace Bert4Rec.Training.Training;

public sealed class NegativeSampler
{
    private readonly int _items, _k;
    private readonly double[]? _cumulative;                 // popularity: cumulative probability of items 1..n
    private readonly SampledObjective _objective;

    /// <param name="items">Catalog size n (items are 1..n).</param>
    /// <param name="k">Negatives per step.</param>
    /// <param name="popularity">Sample in proportion to training counts (each item counted once more, so none has probability 0),
    /// with the log-Q correction log(K q_i) for sampled-CE; false = uniform (the correction is a constant and is left out).</param>
    public NegativeSampler(int items, int k, bool popularity, SampledLossKind kind, float gbceT, SequenceView trainSequences)
    {
        if (items < 1) throw new ArgumentOutOfRangeException(nameof(items), items, "must be >= 1");
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "must be >= 1");
        _items = items; _k = k;
        float[]? logQ = null;
        if (popularity)
        {
            var q = Probabilities(trainSequences, items);
            _cumulative = Cumulative(q);
            if (kind == SampledLossKind.SampledCe)      // gBCE calibrates by beta, not by log-Q
            {
                logQ = new float[items + 1];
                for (int i = 1; i <= items; i++) logQ[i] = (float)Math.Log(k * q[i - 1]);
            }
        }
        _objective = new SampledObjective
        {
            Kind = kind, Candidates = new int[k], LogQ = logQ,
            Beta = kind == SampledLossKind.Gbce ? SampledLoss.GbceBeta(k, items, gbceT) : 1f,
        };
    }

    /// <summary>The objective with this step's K candidates (the same object, refilled: use it before the next draw).</summary>
    public SampledObjective Draw(int seed)
    {
        var rng = new Random(seed);
        var c = _objective.Candidates;
        if (_cumulative == null)
            for (int j = 0; j < _k; j++) c[j] = rng.Next(1, _items + 1);
        else
            for (int j = 0; j < _k; j++) c[j] = DrawPopular(_cumulative, rng);
        return _objective;
    }

    /// <summary>The cumulative probabilities of items 1..n (entry i-1 for item i) in proportion to training counts, each item
    /// counted once more so that none has probability 0.</summary>
    public static double[] PopularityCumulative(SequenceView trainSequences, int items) => Cumulative(Probabilities(trainSequences, items));

    private static double[] Probabilities(SequenceView trainSequences, int items)
    {
        var counts = SequenceDataset.Popularity(trainSequences, items);
        double total = 0;
        for (int i = 1; i <= items; i++) total += counts[i] + 1;
        var q = new double[items];
        for (int i = 1; i <= items; i++) q[i - 1] = (counts[i] + 1.0) / total;
        return q;
    }

    private static double[] Cumulative(double[] q)
    {
        var cumulative = new double[q.Length];
        double acc = 0;
        for (int i = 0; i < q.Length; i++) { acc += q[i]; cumulative[i] = acc; }
        cumulative[^1] = 1.0;
        return cumulative;
    }

    /// <summary>One item drawn from <see cref="PopularityCumulative"/>'s distribution.</summary>
    public static int DrawPopular(double[] cumulative, Random rng)
    {
        int at = Array.BinarySearch(cumulative, rng.NextDouble());
        return Math.Min((at >= 0 ? at : ~at) + 1, cumulative.Length);
    }
}
