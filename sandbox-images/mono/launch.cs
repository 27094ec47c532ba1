// Runs a C# program the way `dotnet run` does for SandboxFusion's csharp mode: a failed
// Debug.Assert / Trace.Assert ends the process (message on stderr, exit 134) instead of
// Mono's default of printing and carrying on. Usage: mono launch.exe PROGRAM.exe [ARGS...]
// Built by sandbox-images/install-toolchains.sh into $RLVR_SANDBOX_PREFIX/mono/launch.exe.
using System;
using System.Diagnostics;

sealed class FailFastListener : TraceListener
{
    public override void Write(string message) { }
    public override void WriteLine(string message) { }

    public override void Fail(string message, string detailMessage)
    {
        Console.Out.Flush();
        Console.Error.WriteLine("Process terminated. Assertion failed.");
        if (!string.IsNullOrEmpty(message)) Console.Error.WriteLine(message);
        if (!string.IsNullOrEmpty(detailMessage)) Console.Error.WriteLine(detailMessage);
        Console.Error.WriteLine(new StackTrace(2, true));
        Console.Error.Flush();
        Environment.Exit(134);
    }
}

static class Launch
{
    static int Main(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("usage: launch.exe PROGRAM.exe [ARGS...]");
            return 2;
        }
        Trace.Listeners.Clear();
        Trace.Listeners.Add(new FailFastListener());
        var rest = new string[args.Length - 1];
        Array.Copy(args, 1, rest, 0, rest.Length);
        return AppDomain.CurrentDomain.ExecuteAssembly(args[0], rest);
    }
}
