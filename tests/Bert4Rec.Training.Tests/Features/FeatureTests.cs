// Feature files: the column spec, vocabularies with pad and OOV, quantile buckets, multi-hot sets, rows matched to the
// dataset's indices, storage with the prepared dataset, and bad rows named by file, line and field.
using Bert4Rec.Contracts;
using Bert4Rec.Training.Data;
using Bert4Rec.Training.Features;

namespace Bert4Rec.Training.Tests.Features;

public class FeatureTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("b4r-features-");
    public void Dispose() => _dir.Delete(true);
    private string Write(string name, string text) { var p = Path.Combine(_dir.FullName, name); File.WriteAllText(p, text); return p; }

    // users 1..4 with 3 items each; item 13 appears once
    private SequenceDataset Data() =>
        InteractionLog.Read(Write("log.txt", "1 10\n1 11\n1 12\n2 10\n2 11\n2 13\n3 12\n3 10\n3 11\n4 11\n4 12\n4 10\n"), new LogReadOptions()).ToDataset(0, 0, false);

    // u.user's layout, generated: id|age|gender|occupation|zip
    private const string Users = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n4|24|M|technician|43537\n9|33|F|other|15213\n";
    // u.item's layout with 3 genre flags instead of 19: id|title|date|video|url|g1|g2|g3
    private const string Items = "10|A (1995)|01-Jan-1995||http://x|0|1|1\n11|B|01-Jul-1996||http://y|1|0|0\n12|C|||http://z|0|0|0\n13|D|01-Jan-1998||u|1|1|1\n";

    [Fact]
    public void Ml100k_layouts_read_categorical_numeric_and_flag_fields()
    {
        var d = Data();
        var withF = FeatureReader.Attach(d, Write("u.user", Users), FeatureFileSpec.Ml100kUsers, Write("u.item", Items),
            FeatureFileSpec.Parse("id=1,year=num:3:3,genre=flags:6-8", '|', "--item-feature-columns"));
        var u = withF.UserFeatures!;
        Assert.Equal(["age", "gender", "occupation", "zip"], u.Fields.Select(f => f.Name));
        Assert.Equal(4, u.Rows);
        var gender = u.Fields[1];
        // M three times, F once among matched users (user 9 is not in the dataset): F is rarer than the min count 2
        Assert.Equal(["M"], gender.Values);
        int row1 = d.UserIds.ToList().IndexOf("1"), row2 = d.UserIds.ToList().IndexOf("2");
        Assert.Equal(FeatureField.FirstValue, u.Row(row1)[1]);
        Assert.Equal(FeatureField.Oov, u.Row(row2)[1]);
        // occupation: technician twice (kept), other and writer once (OOV); every zip is unique (OOV)
        Assert.Equal(["technician"], u.Fields[2].Values);
        Assert.All(Enumerable.Range(0, 4), r => Assert.Equal(FeatureField.Oov, u.Row(r)[3]));
        // age is numeric: each row holds a bucket id, and equal ages share one
        Assert.Equal(u.Row(row1)[0], u.Row(d.UserIds.ToList().IndexOf("4"))[0]);
        Assert.True(u.Row(row2)[0] > u.Row(row1)[0]);

        var it = withF.ItemFeatures!;
        Assert.Equal(d.Items.Count + 1, it.Rows);
        Assert.Equal(new[] { 0, 0, 0, 0 }, it.Row(0).ToArray());          // the pad item
        var genre = it.Fields[1];
        Assert.Equal(3, genre.Width);                                   // item 13 holds all three
        int i10 = d.Items.IndexOf("10"), i12 = d.Items.IndexOf("12");
        var g10 = it.Row(i10)[1..].ToArray();
        Assert.Equal(2, g10.Count(v => v >= FeatureField.FirstValue));
        Assert.Equal(0, g10[2]);                                        // pads after the set
        Assert.Equal(FeatureField.Oov, it.Row(i12)[0]);                 // no date: OOV year
        Assert.Equal(FeatureField.Oov, it.Row(i12)[1]);                 // no genre: one OOV slot
        Assert.Equal(["7", "8", "6"], genre.Values);                    // no header: flags are named by column; ties keep first-seen order
        Assert.Equal($"{it.Fields[0].VocabSize}x1,5x3", it.Shape);
    }

    [Fact]
    public void Numeric_buckets_are_quantiles_and_encode_raw_values()
    {
        var f = Write("n.csv", "id,x\n" + string.Join("\n", Enumerable.Range(1, 100).Select(i => $"u{i},{i}")) + "\n");
        var rows = Enumerable.Range(1, 100).ToDictionary(i => $"u{i}", i => i - 1);
        var t = FeatureReader.Read(f, FeatureFileSpec.Parse("id=1,x=num:2:4", ',', "--user-feature-columns", header: true), id => rows.GetValueOrDefault(id, -1) is int r and >= 0 ? r : null, 100, out var rep);
        Assert.Equal(100, rep.RowsMatched);
        var x = t.Fields[0];
        Assert.Equal(3, x.Boundaries.Count);
        Assert.Equal(4, x.Values.Count);
        // 25 rows per bucket
        Assert.All(Enumerable.Range(0, 4), b => Assert.Equal(25, Enumerable.Range(0, 100).Count(r => t.Row(r)[0] == FeatureField.FirstValue + b)));
        Assert.Equal(FeatureField.FirstValue, x.Encode("-1000"));
        Assert.Equal(FeatureField.FirstValue + 3, x.Encode("1e9"));
        Assert.Equal(FeatureField.Oov, x.Encode(" "));
        Assert.Throws<FormatException>(() => x.Encode("abc"));
        Assert.Equal(1995.5, FeatureReader.ParseNumber("02-Jul-1995")!.Value, 2);
        Assert.Equal(1971.09, FeatureReader.ParseNumber("4-Feb-1971")!.Value, 2);   // u.item writes some days with one digit
    }

    [Fact]
    public void Multi_value_columns_split_by_their_separator_and_header_names_flag_values()
    {
        var rows = new Dictionary<string, int> { ["a"] = 0, ["b"] = 1, ["c"] = 2 };
        var t = FeatureReader.Read(Write("m.tsv", "id\ttags\nb\tx;y;x\na\ty\nc\t\n"),
            FeatureFileSpec.Parse("id=1,tags=multi:2:;", '\t', "--item-feature-columns", header: true, minCount: 1), id => rows.TryGetValue(id, out int r) ? r : null, 3, out _);
        var tags = t.Fields[0];
        Assert.Equal(2, tags.Width);
        Assert.Equal(["y", "x"], tags.Values);   // y twice, x once (duplicates within a row count once)
        Assert.Equal(new[] { tags.Encode("x"), tags.Encode("y") }, t.Row(1).ToArray());
        Assert.Equal(new[] { FeatureField.Oov, 0 }, t.Row(2).ToArray());

        var f = FeatureReader.Read(Write("h.csv", "id,drama,comedy\na,1,0\nb,1,1\n"), FeatureFileSpec.Parse("id=1,genre=flags:2-3", ',', "--x", header: true, minCount: 1),
            id => rows.TryGetValue(id, out int r) ? r : null, 3, out var rep);
        Assert.Equal(["drama", "comedy"], f.Fields[0].Values);
        Assert.Equal(1, rep.EntitiesWithoutRow);
        Assert.Equal(new[] { FeatureField.Oov, 0 }, f.Row(2).ToArray());
    }

    [Theory]
    [InlineData("1|24|M|technician|85711\n1|30|F|x|1\n", "u.user:2", "already given on line 1")]
    [InlineData("1|24|M|technician\n", "u.user:1", "expected at least 5 fields")]
    [InlineData("1|24|M|technician|85711\n2|old|F|x|1\n", "u.user:2", "field 'age' (column 2) is not a number or a date: 'old'")]
    [InlineData("\n|24|M|technician|85711\n", "u.user:2", "field 'id' (column 1) is empty")]
    [InlineData("", "u.user", "no feature rows")]
    public void Bad_rows_are_named_by_file_line_and_field(string text, string where, string what)
    {
        var p = Write("u.user", text);
        var e = Assert.Throws<InvalidDataException>(() => FeatureReader.Attach(Data(), p, FeatureFileSpec.Ml100kUsers, null, null));
        Assert.Contains(Path.Combine(_dir.FullName, where), e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void A_flag_that_is_not_0_or_1_is_named()
    {
        var p = Write("u.item", "10|A|01-Jan-1995||u|0|2|1\n");
        var e = Assert.Throws<InvalidDataException>(() =>
            FeatureReader.Attach(Data(), null, null, p, FeatureFileSpec.Parse("id=1,year=num:3,genre=flags:6-8", '|', "--item-feature-columns")));
        Assert.Contains($"{p}:1: field 'genre' (column 7) must be 0 or 1, found '2'", e.Message);
    }

    [Theory]
    [InlineData("age=num:2", "no id=COLUMN")]
    [InlineData("id=1", "no feature column")]
    [InlineData("id=1,age=number:2", "the kind must be")]
    [InlineData("id=1,age=num:0", "columns count from 1")]
    [InlineData("id=1,age=num:2:1", "bucket count")]
    [InlineData("id=1,g=flags:5-3", "is empty")]
    [InlineData("id=1,g=flags:1-3", "reads the id column")]
    [InlineData("id=1,a=cat:2,a=cat:3", "given twice")]
    [InlineData("id=1,t=multi:2:", "the kind must be")]
    public void Bad_column_specs_name_the_flag_and_entry(string spec, string what)
    {
        var e = Assert.Throws<UsageException>(() => FeatureFileSpec.Parse(spec, '|', "--user-feature-columns"));
        Assert.StartsWith("--user-feature-columns", e.Message);
        Assert.Contains(what, e.Message);
    }

    [Fact]
    public void Features_are_saved_and_loaded_with_the_dataset_and_a_damaged_table_is_refused()
    {
        var d = FeatureReader.Attach(Data(), Write("u.user", Users), FeatureFileSpec.Ml100kUsers, Write("u.item", Items),
            FeatureFileSpec.Parse("id=1,year=num:3:3,genre=flags:6-8", '|', "--item-feature-columns"));
        string dir = Path.Combine(_dir.FullName, "ds");
        d.Save(dir);
        var back = SequenceDataset.Load(dir);
        Assert.Equal(d.UserFeatures!.Slots, back.UserFeatures!.Slots);
        Assert.Equal(d.ItemFeatures!.Slots, back.ItemFeatures!.Slots);
        Assert.Equal(d.ItemFeatures.Shape, back.ItemFeatures.Shape);
        Assert.Equal(d.UserFeatures.Fields[0].Boundaries, back.UserFeatures.Fields[0].Boundaries);
        Assert.Same(back.UserFeatures, LeaveOneOut.Split(back).UserFeatures);
        // a dataset without feature files loads without features
        Data().Save(Path.Combine(_dir.FullName, "plain"));
        Assert.Null(SequenceDataset.Load(Path.Combine(_dir.FullName, "plain")).UserFeatures);

        string uf = Path.Combine(dir, SequenceDataset.UserFeaturesFile);
        File.WriteAllText(uf, File.ReadAllText(uf).Replace("\"Slots\":[", "\"Slots\":[99,"));
        var e = Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir));
        Assert.Contains(uf, e.Message);
        File.WriteAllText(uf, "{ not json");
        Assert.Contains(uf, Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(dir)).Message);
    }
}
