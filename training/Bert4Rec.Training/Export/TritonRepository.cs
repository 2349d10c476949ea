// `export --triton DIR`: a Triton Inference Server model repository holding the serving graph, so stage two can run on
// Triton's GPUs (issue 16). Layout: DIR/NAME/config.pbtxt and DIR/NAME/1/model.onnx, the repository replaced atomically.
using System.Globalization;
using System.Text;
using Bert4Rec.Contracts;

namespace Bert4Rec.Training.Export;

public static class TritonRepository
{
    /// <summary>Refuses, naming --triton-name, a model name Triton cannot take as a folder name here (allowed: letters,
    /// digits, '_', '-', '.', at most 128, not starting with '.').</summary>
    public static void CheckName(string name)
    {
        bool ok = name.Length is > 0 and <= 128 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
        if (!ok) throw new UsageException($"--triton-name: '{name}' is not a model name (letters, digits, '_', '-', '.'; not starting with '.')");
    }

    /// <summary>
    /// The config.pbtxt of the serving graph: inputs item_ids INT64 [N] and candidate_ids INT64 [-1], outputs scores FP32 [-1]
    /// and user_vector FP32 [d+1], the batch dimension left to Triton (max_batch_size, dynamic batching).
    /// </summary>
    public static string Config(string name, ModelConfig cfg, int maxBatch)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"# {cfg.Kind.Name()} serving graph written by bert4rec export --triton: {cfg.ItemCount} items, d={cfg.Hidden}, N={cfg.MaxLength}\n");
        sb.Append(inv, $"name: \"{name}\"\n");
        sb.Append("platform: \"onnxruntime_onnx\"\n");
        sb.Append(inv, $"max_batch_size: {maxBatch}\n");
        sb.Append("input [\n");
        sb.Append(inv, $"  {{ name: \"{ModelIo.ItemIds}\" data_type: TYPE_INT64 dims: [ {cfg.MaxLength} ] }},\n");
        sb.Append(inv, $"  {{ name: \"{ModelIo.CandidateIds}\" data_type: TYPE_INT64 dims: [ -1 ] }}\n");
        sb.Append("]\n");
        sb.Append("output [\n");
        sb.Append(inv, $"  {{ name: \"{ModelIo.Scores}\" data_type: TYPE_FP32 dims: [ -1 ] }},\n");
        sb.Append(inv, $"  {{ name: \"{ModelIo.UserVector}\" data_type: TYPE_FP32 dims: [ {cfg.Hidden + 1} ] }}\n");
        sb.Append("]\n");
        sb.Append("dynamic_batching { }\n");
        sb.Append("instance_group [ { kind: KIND_AUTO } ]\n");
        return sb.ToString();
    }

    /// <summary>Writes DIR/NAME/config.pbtxt and DIR/NAME/1/model.onnx (a copy of <paramref name="onnxPath"/>) into a temporary
    /// folder and puts it at <paramref name="repositoryDir"/> without that path ever missing.</summary>
    public static void Write(string repositoryDir, string name, ModelConfig cfg, string onnxPath, int maxBatch = 64)
    {
        CheckName(name);
        if (maxBatch < 1) throw new UsageException($"--triton-max-batch: {maxBatch} must be >= 1");
        string full = Path.GetFullPath(repositoryDir).TrimEnd('/');
        string tmp = AtomicFile.TempFolderFor(full);
        try
        {
            string version = Path.Combine(tmp, name, "1");
            Directory.CreateDirectory(version);
            File.Copy(onnxPath, Path.Combine(version, "model.onnx"));
            File.WriteAllText(Path.Combine(tmp, name, "config.pbtxt"), Config(name, cfg, maxBatch));
            AtomicFile.ReplaceDirectory(tmp, full);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }
}
