using System.CommandLine;
using System.Globalization;
using MoE.Api;

namespace MoE.Cli.Commands;

/// <summary><c>moe coefficients</c>: the Q4/Q2 coefficients and c, c' for an activation and noise level.</summary>
internal static class CoefficientsCommand
{
    public static Command Create(TextWriter output)
    {
        var activation = Shared.ActivationOption();
        var slope = Shared.SlopeOption();
        var sigma = new Option<double>("--sigma") { Description = "noise standard deviation", DefaultValueFactory = _ => 0.05 };
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var command = new Command("coefficients", "solve the output-transform coefficients (alpha, beta, gamma, delta, c, c') for g and sigma")
        {
            activation, slope, sigma, json,
        };
        command.SetAction(parse =>
        {
            var g = Shared.ParseActivation(parse.GetValue(activation)!, parse.GetValue(slope));
            var c = Transforms.Coefficients(g, parse.GetValue(sigma));
            var rows = new (string Name, double Value)[]
            {
                ("alpha", c.Alpha), ("beta", c.Beta), ("gamma", c.Gamma), ("delta", c.Delta),
                ("c", c.C), ("c_prime", c.CPrime), ("q4_mean", c.Q4Mean), ("q2_mean", c.Q2Mean),
            };
            if (parse.GetValue(json))
            {
                var document = new Dictionary<string, object>
                {
                    ["activation"] = new Dictionary<string, object> { ["name"] = g.Name, ["slope"] = g.Slope },
                    ["sigma"] = c.Sigma,
                };
                foreach (var (name, value) in rows)
                {
                    document[name] = value;
                }

                output.WriteLine(JsonText.Write(document, indented: true));
            }
            else
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{g}, sigma = {c.Sigma}"));
                output.WriteLine("Q4(y) = y^4 + alpha y^3 + beta y^2 + gamma y,  Q2(y) = y^2 + delta y");
                foreach (var (name, value) in rows)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-8} {value,22:R}"));
                }
            }

            return CliApp.Success;
        });
        return command;
    }
}
