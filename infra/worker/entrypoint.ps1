# sluice worker entrypoint (Windows). Same contract as entrypoint.sh: download the inputs listed
# in $env:SLUICE_INPUTS ("file|dir<TAB>s3://...<TAB>path" per line), run the task's command,
# then upload $env:SLUICE_OUTPUT to $env:SLUICE_RESULT_URI as $env:SLUICE_OUTPUT_KIND says
# (file: tagged sluice-kind=task-result; dir: every file under it; nothing: no upload).
# Exit status: the command's status when it fails; 75 when an input cannot be downloaded or the
# output cannot be uploaded; 0 otherwise, also when the command wrote no output file (nothing is
# uploaded and task-events reports Sluice.OutputMissing).
$ErrorActionPreference = 'Stop'

if (-not $env:SLUICE_OUTPUT) { $env:SLUICE_OUTPUT = 'C:\tmp\sluice\result.json' }
if (-not $env:SLUICE_OUTPUT_KIND) { $env:SLUICE_OUTPUT_KIND = 'file' }
if ($args.Count -eq 0) {
    [Console]::Error.WriteLine('sluice-entrypoint: no command given')
    exit 64
}
Import-Module AWS.Tools.S3

function Split-S3Uri([string]$uri) {
    if ($uri -notmatch '^s3://([^/]+)/(.*)$') { throw "not an s3://bucket/key URI: '$uri'" }
    return @($Matches[1], $Matches[2])
}

if ($env:SLUICE_INPUTS) {
    foreach ($line in $env:SLUICE_INPUTS -split "`n") {
        if (-not $line) { continue }
        $kind, $uri, $path = $line -split "`t", 3
        try {
            $bucket, $key = Split-S3Uri $uri
            if ($kind -eq 'file') {
                New-Item -ItemType Directory -Force -Path (Split-Path -Parent $path) | Out-Null
                Read-S3Object -BucketName $bucket -Key $key -File $path | Out-Null
            } elseif ($kind -eq 'dir') {
                New-Item -ItemType Directory -Force -Path $path | Out-Null
                Read-S3Object -BucketName $bucket -KeyPrefix $key -Folder $path | Out-Null
            } else {
                throw "unknown input kind '$kind'"
            }
        } catch {
            [Console]::Error.WriteLine("sluice-entrypoint: cannot stage input $uri at ${path}: $_")
            exit 75
        }
    }
}
if ($env:SLUICE_OUTPUT_KIND -eq 'dir') {
    New-Item -ItemType Directory -Force -Path $env:SLUICE_OUTPUT | Out-Null
} elseif ($env:SLUICE_OUTPUT_KIND -eq 'file') {
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $env:SLUICE_OUTPUT) | Out-Null
}

$command = $args[0]
$arguments = @()
if ($args.Count -gt 1) { $arguments = $args[1..($args.Count - 1)] }
& $command @arguments
$status = $LASTEXITCODE
if ($status -ne 0) {
    [Console]::Error.WriteLine("sluice-entrypoint: command exited with status $status; nothing uploaded")
    exit $status
}
if ($env:SLUICE_OUTPUT_KIND -eq 'nothing') { exit 0 }

try {
    $bucket, $key = Split-S3Uri $env:SLUICE_RESULT_URI
    if ($env:SLUICE_OUTPUT_KIND -eq 'dir') {
        # Remove what an earlier attempt left, then upload every file.
        Get-S3Object -BucketName $bucket -KeyPrefix $key | ForEach-Object {
            Remove-S3Object -BucketName $bucket -Key $_.Key -Force | Out-Null
        }
        Write-S3Object -BucketName $bucket -KeyPrefix $key -Folder $env:SLUICE_OUTPUT -Recurse | Out-Null
    } else {
        if (-not (Test-Path $env:SLUICE_OUTPUT -PathType Leaf)) {
            [Console]::Error.WriteLine("sluice-entrypoint: command exited 0 but wrote no output at $env:SLUICE_OUTPUT; nothing uploaded")
            exit 0
        }
        if ($env:SLUICE_OUTPUT_KEEP -eq '1') {
            # A job's result (the last stage that writes something): kept, not tagged for expiry.
            Write-S3Object -BucketName $bucket -Key $key -File $env:SLUICE_OUTPUT | Out-Null
        } else {
            $tag = New-Object Amazon.S3.Model.Tag
            $tag.Key = 'sluice-kind'
            $tag.Value = 'task-result'
            Write-S3Object -BucketName $bucket -Key $key -File $env:SLUICE_OUTPUT -TagSet @($tag) | Out-Null
        }
    }
} catch {
    [Console]::Error.WriteLine("sluice-entrypoint: upload to $env:SLUICE_RESULT_URI failed: $_")
    exit 75
}
Write-Output "sluice-entrypoint: uploaded $env:SLUICE_OUTPUT to $env:SLUICE_RESULT_URI"
exit 0
