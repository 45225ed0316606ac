// Parses each file given on the command line up to Phases.CONVERSION (syntax and AST conversion)
// and prints one line per file. Exits 1 if any file fails. Used by scripts/check-jenkins.sh.
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.Phases
import org.codehaus.groovy.control.MultipleCompilationErrorsException

int bad = 0
args.each { String path ->
    CompilationUnit unit = new CompilationUnit(new CompilerConfiguration())
    unit.addSource(new File(path))
    try {
        unit.compile(Phases.CONVERSION)
        println "parsed  ${path}"
    } catch (MultipleCompilationErrorsException e) {
        bad++
        println "ERROR   ${path}"
        println e.message
    }
}
if (bad) {
    System.exit(1)
}
