// A Two-Tower run folder to a bundle's inputs: its layout depends on the dataset's feature fields, so export reads them from
// the dataset it trained on, and refuses to go without it or with another dataset.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Features;
using Bert4Rec.Training.Pipeline;
using Bert4Rec.Training.Training;

namespace Bert4Rec.Training.Tests.Pipeline;

public class TwoTowerExportTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-twotower-export-");
    public void Dispose() => _dir.Delete(true);

    private static SequenceDataset Data(string itemPrefix)
    {
        var rng = new Random(3);
        var seqs = Enumerable.Range(0, 30).Select(u => Enumerable.Range(1, 20).OrderBy(_ => rng.Next()).Take(6).ToArray()).ToArray();
        var data = new SequenceDataset(new Vocabulary(Enumerable.Range(1, 20).Select(i => $"{itemPrefix}{i}").ToArray()), Enumerable.Range(0, 30).Select(u => $"u{u}").ToArray(), seqs);
        var users = new FeatureTable([new FeatureField { Name = "gender", Kind = FeatureKind.Categorical, Width = 1, Values = ["f", "m"] }], 30,
                                     Enumerable.Range(0, 30).Select(u => 2 + u % 2).ToArray());
        var items = new FeatureTable([new FeatureField { Name = "genre", Kind = FeatureKind.MultiHot, Width = 2, Values = ["a", "b", "c"] }], 21,
                                     Enumerable.Range(0, 21).SelectMany(i => i == 0 ? new[] { 0, 0 } : [2 + i % 3, i % 2 == 0 ? 0 : 4]).ToArray());
        return data.WithFeatures(users, items);
    }

    [Fact]
    public void Export_reads_the_feature_fields_from_the_dataset_the_run_trained_on()
    {
        var data = Data("i");
        string dataDir = Path.Combine(_dir.FullName, "data"), run = Path.Combine(_dir.FullName, "run");
        data.Save(dataDir);
        Directory.CreateDirectory(run);
        string vocab = Path.Combine(run, SequenceDataset.VocabFile);
        data.Items.Save(vocab);
        var cfg = TrainingConfig.FromPreset("synthetic", "two-tower") with { Hidden = 8, MaxLength = 4, Epochs = 2, BatchSize = 32, Threads = 1 };
        var state = new Trainer(cfg, LeaveOneOut.Split(SequenceDataset.Load(dataDir)), run, _ => { }) { VocabularySha256 = BundleManifests.Sha256(vocab) }.Run();
        string best = RunFolder.WeightsPath(run);

        Assert.Throws<UsageException>(() => RunFolder.LoadForExport(best, null));
        var (model, weights, itemSlots) = RunFolder.LoadForExport(best, dataDir);
        Assert.Equal((ModelKind.TwoTower, "4x1", "5x2"), (model.Kind, model.UserFeatures, model.ItemFeatures));
        Assert.Equal(state.BestParameters, weights);
        Assert.Equal(data.ItemFeatures!.Slots, itemSlots);

        // another dataset (other item ids) is refused by the vocabulary the weights recorded
        string other = Path.Combine(_dir.FullName, "other");
        Data("x").Save(other);
        Assert.Throws<InvalidDataException>(() => RunFolder.LoadForExport(best, other));
    }
}
