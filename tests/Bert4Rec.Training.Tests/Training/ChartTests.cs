// The PNG charts: loss.png and compare's chart.png are valid PNGs of the stated size, drawn with the expected series.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Training;
using ScottPlot;
using SkiaSharp;

namespace Bert4Rec.Training.Tests.Training;

/// <summary>Reads a chart back: the PNG signature, then a full decode (chunk CRCs and the compressed image) by SkiaSharp.</summary>
internal static class Png
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static SKBitmap Read(string path, int width, int height)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan().StartsWith(Signature), $"{path} does not start with the PNG signature");
        using var codec = SKCodec.Create(new MemoryStream(bytes));
        Assert.NotNull(codec);
        Assert.Equal(SKEncodedImageFormat.Png, codec.EncodedFormat);
        var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        return bitmap;
    }

    /// <summary>Pixels within a small distance of <paramref name="hex"/> (line centres keep their color; edges are blended).</summary>
    public static int Count(SKBitmap b, string hex)
    {
        var c = SKColor.Parse(hex);
        int n = 0;
        for (int y = 0; y < b.Height; y++)
            for (int x = 0; x < b.Width; x++)
            {
                var p = b.GetPixel(x, y);
                if (Math.Abs(p.Red - c.Red) + Math.Abs(p.Green - c.Green) + Math.Abs(p.Blue - c.Blue) < 24) n++;
            }
        return n;
    }
}

public class ChartTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-chart-");
    public void Dispose() => _dir.Delete(true);

    private static RankingMetrics Val(double ndcg) => new("full", 100, 0.1, 0.2, 0.3, ndcg * 0.8, ndcg, 0.1);

    [Fact]
    public void Loss_chart_is_a_png_of_the_stated_size_with_a_loss_line_and_an_ndcg_line_on_the_right_axis()
    {
        var history = new List<EpochRecord>
        {
            new(1, 10, 6.5, 1e-3, 1, 1000, null), new(2, 20, 5.9, 1e-3, 2, 1000, Val(0.05)), new(3, 30, double.NaN, 1e-3, 3, 1000, null),
            new(4, 40, 5.1, 1e-3, 4, 1000, Val(0.08)),
        };
        var plot = TrainingChart.Build(history);
        var lines = plot.GetPlottables<ScottPlot.Plottables.Scatter>().ToList();
        Assert.Equal([TrainingChart.LossLabel, TrainingChart.NdcgLabel], lines.Select(l => l.LegendText));
        Assert.Equal([1.0, 2, 4], lines[0].Data.GetScatterPoints().Select(p => p.X));          // the NaN epoch is left out
        Assert.Equal([0.05, 0.08], lines[1].Data.GetScatterPoints().Select(p => p.Y));
        Assert.Same(plot.Axes.Right, lines[1].Axes.YAxis);

        string path = Path.Combine(_dir.FullName, "loss.png");
        TrainingChart.Write(path, history);
        using var png = Png.Read(path, PngChart.Width, PngChart.Height);
        Assert.True(Png.Count(png, PngChart.Palette[0]) > 100, "the loss line is drawn");
        Assert.True(Png.Count(png, PngChart.Palette[1]) > 100, "the NDCG@10 line is drawn");
        Assert.True(Png.Count(png, "#000000") > 500, "axis text is drawn (a machine without fonts draws none)");
    }

    [Fact]
    public void A_chart_rewritten_in_place_replaces_the_old_one_whole()
    {
        string path = Path.Combine(_dir.FullName, "loss.png");
        TrainingChart.Write(path, [new(1, 10, 6.5, 1e-3, 1, 1000, Val(0.05))]);
        byte[] first = File.ReadAllBytes(path);
        TrainingChart.Write(path, [new(1, 10, 6.5, 1e-3, 1, 1000, Val(0.05)), new(2, 20, 6.0, 1e-3, 2, 1000, Val(0.07))]);
        Assert.NotEqual(first, File.ReadAllBytes(path));
        using var _ = Png.Read(path, PngChart.Width, PngChart.Height);
        Assert.Equal(["loss.png"], _dir.GetFiles().Select(f => f.Name));            // no temporary file left beside it
    }
}
