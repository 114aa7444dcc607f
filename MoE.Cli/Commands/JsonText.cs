using System.Collections;
using System.Text;
using System.Text.Json;

namespace MoE.Cli.Commands;

/// <summary>
/// JSON text of the commands' result documents (dictionaries of strings, numbers, booleans, nulls, lists and nested
/// dictionaries), written with <see cref="Utf8JsonWriter"/>. <c>JsonSerializer.Serialize</c> of an object graph
/// discovers its types by reflection, which a natively compiled <c>moe</c> cannot do; the writer gives the same text
/// (same number format and escaping) without it.
/// </summary>
internal static class JsonText
{
    /// <summary>The document as JSON, indented by two spaces when <paramref name="indented"/>.</summary>
    public static string Write(object? document, bool indented)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
        {
            Value(writer, document);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Value(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case double d:
                if (!double.IsFinite(d))
                {
                    throw new ArgumentException($"JSON has no value for the number {d}.", nameof(value));
                }

                writer.WriteNumberValue(d);
                break;
            case int i:
                writer.WriteNumberValue(i);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case IDictionary dictionary:
                writer.WriteStartObject();
                foreach (DictionaryEntry entry in dictionary)
                {
                    writer.WritePropertyName((string)entry.Key);
                    Value(writer, entry.Value);
                }

                writer.WriteEndObject();
                break;
            case IEnumerable items:
                writer.WriteStartArray();
                foreach (var item in items)
                {
                    Value(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                throw new ArgumentException($"JsonText cannot write a {value.GetType().Name}.", nameof(value));
        }
    }
}
