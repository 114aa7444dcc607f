using System.CommandLine;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe export</c>: a model file to a format other programs score with (today ONNX; docs/deploying.md).</summary>
internal static class ExportCommand
{
    public static Command Create(TextWriter output)
    {
        var model = new Argument<FileInfo>("model") { Description = "the model file (JSON)" };
        var onnx = new Option<FileInfo>("--onnx")
        {
            Description = "the ONNX file to write: input x [rows, d], outputs mean, expert_means, gate (opset 17)",
            Required = true,
        };
        var float32 = new Option<bool>("--float32")
        {
            Description = "single-precision input, parameters and outputs (for runtimes without double kernels)",
        };
        var command = new Command("export", "export a model for other runtimes: an ONNX graph of standard operators")
        {
            model, onnx, float32,
        };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(onnx)!;
            Shared.CheckPaths([parse.GetValue(model)], [file]);
            var m = MixtureOfExperts.Load(parse.GetValue(model)!.FullName);
            var single = parse.GetValue(float32);
            m.SaveOnnx(Shared.PrepareOutput(file), single);
            output.WriteLine(
                $"wrote {file}: {m.Experts} experts on {m.Dimension} inputs, {(single ? "float32" : "double")}, "
                + $"ONNX opset {MoE.Onnx.OnnxExport.Opset}; input x [rows, {m.Dimension}], outputs mean [rows], "
                + $"expert_means [rows, {m.Experts}], gate [rows, {m.Experts}]");
            return CliApp.Success;
        });
        return command;
    }
}
