@echo off
rem finetune launcher for Windows: the twin of ./finetune. Builds the CLI with Maven on first use (delete
rem toolkit-cli\target\.built to rebuild after changing sources), then runs it. Needs only JDK 17 and Maven; the
rem engine's native library comes from the Maven profile for this OS (native-win-x86_64) and runs offline.
setlocal
set "ROOT=%~dp0"
set "TARGET=%ROOT%toolkit-cli\target"
if not exist "%TARGET%\.built" (
  echo finetune: building the CLI ^(first use^)... 1>&2
  if exist "%TARGET%\lib" rmdir /s /q "%TARGET%\lib"
  pushd "%ROOT%"
  call mvn -q -B -Dstyle.color=never -DskipTests -pl toolkit-cli -am package
  if errorlevel 1 (
    popd
    echo finetune: the build failed 1>&2
    exit /b 1
  )
  popd
  type nul > "%TARGET%\.built"
)
rem G1 settings that give free heap back (docs/performance.md); FINETUNE_JAVA_OPTS replaces them all.
if "%FINETUNE_JAVA_OPTS%"=="" set "FINETUNE_JAVA_OPTS=-Xmx8g -XX:GCTimeRatio=4 -XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=30 -XX:NewSize=48m -XX:MaxNewSize=48m"
java -Dai.djl.offline=true %FINETUNE_JAVA_OPTS% -cp "%TARGET%\classes;%TARGET%\lib\*" dev.finetune.cli.FinetuneCli %*
exit /b %ERRORLEVEL%
