# sluice worker entrypoint (Windows). Same contract as entrypoint.sh: run the task's command,
# then upload $env:SLUICE_OUTPUT to $env:SLUICE_RESULT_URI, tagged sluice-kind=task-result.
# Exit status: the command's status when it fails; 75 when the result is missing or the upload
# fails; 0 once uploaded.
$ErrorActionPreference = 'Stop'

if (-not $env:SLUICE_OUTPUT) { $env:SLUICE_OUTPUT = 'C:\tmp\sluice\result.json' }
if ($args.Count -eq 0) {
    [Console]::Error.WriteLine('sluice-entrypoint: no command given')
    exit 64
}
New-Item -ItemType Directory -Force -Path (Split-Path -Parent $env:SLUICE_OUTPUT) | Out-Null

$command = $args[0]
$arguments = @()
if ($args.Count -gt 1) { $arguments = $args[1..($args.Count - 1)] }
& $command @arguments
$status = $LASTEXITCODE
if ($status -ne 0) {
    [Console]::Error.WriteLine("sluice-entrypoint: command exited with status $status; nothing uploaded")
    exit $status
}
if (-not (Test-Path $env:SLUICE_OUTPUT) -or (Get-Item $env:SLUICE_OUTPUT).Length -eq 0) {
    [Console]::Error.WriteLine("sluice-entrypoint: command succeeded but wrote no result to $env:SLUICE_OUTPUT")
    exit 75
}
if ($env:SLUICE_RESULT_URI -notmatch '^s3://([^/]+)/(.+)$') {
    [Console]::Error.WriteLine("sluice-entrypoint: SLUICE_RESULT_URI must be s3://bucket/key, got '$env:SLUICE_RESULT_URI'")
    exit 75
}
$bucket = $Matches[1]
$key = $Matches[2]

try {
    Import-Module AWS.Tools.S3
    $tag = New-Object Amazon.S3.Model.Tag
    $tag.Key = 'sluice-kind'
    $tag.Value = 'task-result'
    Write-S3Object -BucketName $bucket -Key $key -File $env:SLUICE_OUTPUT `
        -ContentType 'application/json' -TagSet @($tag)
} catch {
    [Console]::Error.WriteLine("sluice-entrypoint: upload to $env:SLUICE_RESULT_URI failed: $_")
    exit 75
}
Write-Output "sluice-entrypoint: uploaded $env:SLUICE_OUTPUT to $env:SLUICE_RESULT_URI"
exit 0
