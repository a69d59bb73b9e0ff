; Inno Setup 6 script: a per-user installer for the one-folder Storyteller bundle.
; build.py runs it on Windows:  iscc /DAppVersion=0.1.0 /DDistDir=dist\Storyteller /DOutputDir=dist
;   /DIconFile=packaging\icons\storyteller.ico packaging\windows\storyteller.iss
; (the defaults below let it run from the repository root without options).
; Installs without administrator rights into %LOCALAPPDATA%\Programs\Storyteller; uninstalling
; never touches the user's albums, stories or models (%LOCALAPPDATA%\Storyteller).

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef DistDir
  #define DistDir "..\..\dist\Storyteller"
#endif
#ifndef OutputDir
  #define OutputDir "..\..\dist"
#endif
#ifndef IconFile
  #define IconFile "..\icons\storyteller.ico"
#endif

[Setup]
; The AppId identifies Storyteller to Windows across versions: never change it.
AppId={{6E5D43E7-6806-4C5E-BE1A-911037960BC6}
AppName=Storyteller
AppVersion={#AppVersion}
AppVerName=Storyteller {#AppVersion}
AppPublisher=Storyteller contributors
DefaultDirName={autopf}\Storyteller
DefaultGroupName=Storyteller
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#OutputDir}
OutputBaseFilename=Storyteller-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\Storyteller.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller folder: Storyteller.exe (windowed), storyteller-cli.exe (console, for
; --self-test and the subcommands) and _internal\.
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Storyteller"; Filename: "{app}\Storyteller.exe"
Name: "{autodesktop}\Storyteller"; Filename: "{app}\Storyteller.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Storyteller.exe"; Description: "{cm:LaunchProgram,Storyteller}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the installer put there; the user's data folder is left alone.
Type: filesandordirs; Name: "{app}\_internal"
