#!/usr/bin/env bash
# The deploy command: builds the functions for arm64, derives the template parameters the
# pipeline file implies, deploys the stack with SAM, pushes the pipeline file and says what is
# left to do. macOS and Linux, root or not (bash 3.2 and up). `scripts/deploy.sh --help`.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/deploy.sh --stack NAME [--region REGION] [--profile PROFILE]
                         [--pipeline FILE] [--parameter NAME=VALUE]... [--dry-run]

Deploys the ECS deployment handlers as the CloudFormation stack NAME, with the template
parameters derived from the pipeline file FILE (default pipeline.toml), then pushes FILE to
the stack as the pipeline in force.

  --stack NAME        the stack (any legal CloudFormation stack name)
  --region REGION     the AWS region (default: AWS_REGION, or the profile's)
  --profile PROFILE   the AWS profile (default: AWS_PROFILE, or the default credentials)
  --pipeline FILE     the pipeline file (default: pipeline.toml)
  --parameter NAME=VALUE
                      a template parameter the pipeline file does not imply, e.g.
                      PermissionsBoundary=arn:aws:iam::123456789012:policy/boundary or
                      ApprovalPageConcurrency=5 (repeatable; a stack keeps the values it
                      was given until another is passed)
  --dry-run           change nothing: print the parameters and, with credentials, build
                      and print the change set's summary (a change set is left on the
                      stack for review); without credentials, the resources the template
                      would create
  -h, --help          this text

Tools: sam, cargo-lambda, zig (scripts/setup-deploy-tools.sh installs them into ./.venv)
and cargo (Rust through rustup; rust-toolchain.toml pins the version).
Environment: PIPECTL=path uses that pipectl instead of building target/release/pipectl.
EOF
}

say() { printf 'deploy: %s\n' "$*" >&2; }
die() {
  printf 'deploy: %s\n' "$*" >&2
  exit 1
}

stack=
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
profile=${AWS_PROFILE:-}
pipeline=pipeline.toml
dry_run=false
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --stack | --region | --profile | --pipeline | --parameter)
      [ $# -ge 2 ] || die "$1 needs a value (see --help)"
      case $1 in
        --stack) stack=$2 ;;
        --region) region=$2 ;;
        --profile) profile=$2 ;;
        --pipeline) pipeline=$2 ;;
        --parameter) extra+=("$2") ;;
      esac
      shift 2
      ;;
    --parameter=*) extra+=("${1#*=}"); shift ;;
    --stack=*) stack=${1#*=}; shift ;;
    --region=*) region=${1#*=}; shift ;;
    --profile=*) profile=${1#*=}; shift ;;
    --pipeline=*) pipeline=${1#*=}; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$stack" ] || { usage >&2; die "--stack is required"; }
stack_pattern='^[A-Za-z][A-Za-z0-9-]*$'
if ! [[ $stack =~ $stack_pattern ]] || [ "${#stack}" -gt 128 ]; then
  die "invalid stack name: $stack (a letter, then letters, digits and hyphens; at most 128)"
fi
[ -f "$pipeline" ] || die "no pipeline file $pipeline (--pipeline FILE)"
# Absolute, as the commands below run from the repository's root.
pipeline_path="$(cd "$(dirname "$pipeline")" && pwd)/$(basename "$pipeline")"

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -d "$root/.venv/bin" ]; then
  PATH="$root/.venv/bin:$PATH"
fi
export PATH SAM_CLI_TELEMETRY=${SAM_CLI_TELEMETRY:-0}
# pipectl and the credential checks read these; sam gets them as options too.
if [ -n "$region" ]; then export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"; fi
if [ -n "$profile" ]; then export AWS_PROFILE="$profile"; fi
# --region and --profile for sam and the aws CLI (bash 3.2 with set -u: an empty array is
# expanded as ${a[@]+"${a[@]}"}).
aws_opts=()
set_aws_opts() {
  aws_opts=()
  if [ -n "$region" ]; then aws_opts+=(--region "$region"); fi
  if [ -n "$profile" ]; then aws_opts+=(--profile "$profile"); fi
}
set_aws_opts
scratch=$(mktemp -d "${TMPDIR:-/tmp}/deploy.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# (a) The tools.
missing=
command -v sam >/dev/null 2>&1 || missing="$missing sam"
command -v cargo-lambda >/dev/null 2>&1 || missing="$missing cargo-lambda"
# cargo-lambda runs zig from PATH or the ziglang Python package (which the venv holds).
command -v zig >/dev/null 2>&1 || python3 -c 'import ziglang' >/dev/null 2>&1 || missing="$missing zig"
command -v cargo >/dev/null 2>&1 || missing="$missing cargo"
if [ -n "$missing" ]; then
  say "missing:$missing"
  say "  sam, cargo-lambda, zig: scripts/setup-deploy-tools.sh (into ./.venv, no root needed)"
  say "  cargo: Rust through rustup (https://rustup.rs); rust-toolchain.toml picks the version"
  if [ "$dry_run" = false ]; then exit 1; fi
  say "going on with the dry run as far as the tools allow"
fi

# A Python with boto3 (the venv's, which SAM CLI installs it into), else the aws CLI, for
# the few reads the script makes of the account.
boto_python=
for candidate in "$root/.venv/bin/python" python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import boto3' >/dev/null 2>&1; then
    boto_python=$candidate
    break
  fi
done

# aws_read identity | region | status STACK | output STACK KEY
aws_read() {
  if [ -n "$boto_python" ]; then
    "$boto_python" - "$@" <<'PY'
import sys
import boto3
import botocore.config
import botocore.exceptions

what = sys.argv[1]
config = botocore.config.Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2})
session = boto3.session.Session()
try:
    if what == "region":
        print(session.region_name or "")
    elif what == "identity":
        print(session.client("sts", config=config).get_caller_identity()["Account"])
    else:
        stack = sys.argv[2]
        try:
            found = session.client("cloudformation", config=config).describe_stacks(StackName=stack)["Stacks"][0]
        except botocore.exceptions.ClientError as e:
            if "does not exist" in str(e):
                print("NONE" if what == "status" else "")
                sys.exit(0)
            raise
        if what == "status":
            print(found["StackStatus"])
        else:
            print(next((o["OutputValue"] for o in found.get("Outputs", []) if o["OutputKey"] == sys.argv[3]), ""))
except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
    print(e, file=sys.stderr)
    sys.exit(1)
PY
  elif command -v aws >/dev/null 2>&1; then
    local out
    case $1 in
      region) aws configure get region 2>/dev/null || true ;;
      identity) aws ${aws_opts[@]+"${aws_opts[@]}"} --cli-connect-timeout 5 sts get-caller-identity --query Account --output text ;;
      status | output)
        if ! out=$(aws ${aws_opts[@]+"${aws_opts[@]}"} cloudformation describe-stacks --stack-name "$2" --output json 2>&1); then
          case $out in *"does not exist"*) if [ "$1" = status ]; then echo NONE; fi; return 0 ;; esac
          echo "$out" >&2
          return 1
        fi
        if [ "$1" = status ]; then
          aws ${aws_opts[@]+"${aws_opts[@]}"} cloudformation describe-stacks --stack-name "$2" --query 'Stacks[0].StackStatus' --output text
        else
          aws ${aws_opts[@]+"${aws_opts[@]}"} cloudformation describe-stacks --stack-name "$2" \
            --query "Stacks[0].Outputs[?OutputKey=='$3'].OutputValue" --output text
        fi
        ;;
    esac
  else
    echo "neither the aws CLI nor a Python with boto3 (scripts/setup-deploy-tools.sh installs one)" >&2
    return 1
  fi
}

# (b) pipectl, built from this checkout (a no-op when it is up to date) unless PIPECTL names one.
if [ -n "${PIPECTL:-}" ]; then
  pipectl=$PIPECTL
else
  pipectl="$root/target/release/pipectl"
  if [ ! -x "$pipectl" ] || command -v cargo >/dev/null 2>&1; then
    command -v cargo >/dev/null 2>&1 || die "no $pipectl and no cargo to build it"
    say "building pipectl (cargo build --release -p pipectl)"
    if ! cargo build --release --quiet -p pipectl; then
      [ -x "$pipectl" ] || die "could not build pipectl"
      say "could not build pipectl; using the one built before ($pipectl)"
    fi
  fi
fi
[ -x "$pipectl" ] || die "pipectl is not executable: $pipectl"

# Credentials decide between online (preflight, PassableRoleArns, change set) and offline.
account=
if account=$(aws_read identity 2>"$scratch/sts"); then
  online=true
  if [ -z "$region" ]; then region=$(aws_read region 2>/dev/null || true); fi
  [ -n "$region" ] || die "no region: pass --region or set one in the profile"
  export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
  set_aws_opts
  say "account $account, region $region, stack $stack"
else
  online=false
  why=$(tr '\n' ' ' <"$scratch/sts")
  [ "$dry_run" = true ] || die "no usable AWS credentials: ${why:-the check failed}"
  say "no usable AWS credentials (${why:-the check failed}): an offline dry run"
fi

# (b) The parameters the pipeline file implies: `Name=value` lines on stdout.
parameters_args=(pipeline parameters "$pipeline_path")
if [ "$online" = false ]; then parameters_args+=(--offline); fi
problems="$scratch/problems"
if ! derived=$("$pipectl" "${parameters_args[@]}" 2>"$problems"); then
  cat "$problems" >&2
  die "\`pipectl ${parameters_args[*]}\` failed (see above)"
fi
cat "$problems" >&2
overrides=()
names=" "
while IFS= read -r line; do
  [ -n "$line" ] || continue
  name=${line%%=*}
  value=${line#*=}
  name_pattern='^[A-Za-z][A-Za-z0-9]*$'
  if [ "$name" = "$line" ] || ! [[ $name =~ $name_pattern ]]; then
    die "pipectl printed a line that is no Name=value: $line"
  fi
  case $value in
    *[[:space:]\"\']*) die "pipectl printed a value SAM cannot take: $line" ;;
  esac
  overrides+=("$name=\"$value\"")
  names="$names$name "
done <<EOF
$derived
EOF
for required in RepositoryNames ClusterNames; do
  case $names in *" $required "*) ;; *) die "pipectl did not derive $required" ;; esac
done
if [ "$online" = true ]; then
  case $names in *" PassableRoleArns "*) ;; *) die "pipectl did not derive PassableRoleArns" ;; esac
fi
# The parameters given with --parameter: never one the pipeline file implies.
for given in ${extra[@]+"${extra[@]}"}; do
  name=${given%%=*}
  value=${given#*=}
  name_pattern='^[A-Za-z][A-Za-z0-9]*$'
  if [ "$name" = "$given" ] || ! [[ $name =~ $name_pattern ]]; then
    die "--parameter takes NAME=VALUE: $given"
  fi
  case $names in *" $name "*) die "$name is derived from the pipeline file; change the file instead" ;; esac
  case $name in
    TableDeletionProtection | PassableRoleArns) die "$name is set by this script" ;;
  esac
  case $value in *\"*) die "a parameter value cannot hold a double quote: $given" ;; esac
  overrides+=("$name=\"$value\"")
done

if grep -q '^problem:' "$problems"; then
  if [ "$dry_run" = false ]; then
    die "the pipeline file does not match the account (the problems above); nothing was deployed"
  fi
  say "the pipeline file does not match the account (the problems above): a deploy would stop here"
fi

# A new stack is created with the tables' deletion protection off, so that a failed create
# removes what it made (RetainExceptOnCreate); it is turned on once the create succeeded. An
# existing stack's tables keep theirs on, always.
status=NONE
if [ "$online" = true ]; then
  status=$(aws_read status "$stack") || die "could not read the stack $stack"
fi
case $status in
  NONE | REVIEW_IN_PROGRESS) first_create=true ;;
  ROLLBACK_COMPLETE | ROLLBACK_FAILED)
    die "the stack's first create failed ($status); delete it (sam delete --stack-name $stack) and run this again"
    ;;
  *_IN_PROGRESS) die "the stack is busy ($status); run this again when it is done" ;;
  *) first_create=false ;;
esac
protection=true
if [ "$first_create" = true ]; then protection=false; fi

printf '\nParameters (derived from %s, then --parameter):\n' "$pipeline"
for override in ${overrides[@]+"${overrides[@]}"}; do printf '  %s\n' "$override"; done
if [ "$online" = true ] && [ "$first_create" = true ]; then
  printf '  TableDeletionProtection="false" (a new stack; "true" once the create succeeded)\n'
elif [ "$online" = true ]; then
  printf '  TableDeletionProtection="true"\n'
else
  printf '  (PassableRoleArns comes from the account; TableDeletionProtection is "false" for a new stack, "true" after)\n'
fi
echo

sam_deploy() {
  sam deploy --template-file "$root/.aws-sam/build/template.yaml" --stack-name "$stack" \
    --capabilities CAPABILITY_IAM --resolve-s3 --no-fail-on-empty-changeset --no-confirm-changeset \
    ${aws_opts[@]+"${aws_opts[@]}"} "$@"
}

sam_build() {
  say "building the functions for arm64 (sam build, cargo-lambda)"
  sam build --beta-features --template-file "$root/template.yaml" ${aws_opts[@]+"${aws_opts[@]}"}
}

if [ "$dry_run" = true ]; then
  if [ "$online" = true ] && [ -z "$missing" ]; then
    sam_build
    say "the change set (not executed)"
    sam_deploy --no-execute-changeset \
      --parameter-overrides ${overrides[@]+"${overrides[@]}"} "TableDeletionProtection=\"$protection\""
    say "dry run: nothing was deployed; the change set above is left on the stack for review"
    exit 0
  fi
  if [ "$online" = true ]; then say "no change set without the tools (above)"; fi
  # Offline: what the template would create with these parameters (the SAM transform applied
  # where SAM CLI's Python libraries are at hand, else the template's own resources).
  listing_python=python3
  for candidate in "$root/.venv/bin/python" python3; do
    if command -v "$candidate" >/dev/null 2>&1; then listing_python=$candidate; break; fi
  done
  "$listing_python" - "$root/template.yaml" "${region:-us-east-1}" ${overrides[@]+"${overrides[@]}"} <<'PY'
import copy, os, re, sys

path, region, given = sys.argv[1], sys.argv[2], sys.argv[3:]
values = {}
for item in given:
    name, _, value = item.partition("=")
    values[name] = value.strip('"')
text = open(path).read()

template = None
try:
    from samcli.yamlhelper import yaml_parse
    template = yaml_parse(text)
except Exception:
    try:
        from cfnlint.decode.cfn_yaml import loads
        template = loads(text, path)
    except Exception:
        pass

if template is None:
    # No YAML library that knows CloudFormation's tags: the template's own resources.
    print("Resources in template.yaml (no YAML library for CloudFormation here; conditions not evaluated):")
    for name, kind in re.findall(r"^  ([A-Za-z0-9]+):\n    Type: (\S+)", text, re.M):
        print(f"  {kind:40} {name}")
    sys.exit(0)

resources, how = template["Resources"], "template.yaml"
try:
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    expanding = copy.deepcopy(template)
    for resource in expanding["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://built-by-sam/function.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    resources = transform(expanding, {}, NoManagedPolicies())["Resources"]
    how = "template.yaml after the SAM transform"
except Exception as e:
    print(f"(the SAM transform is not at hand: {e}; listing the template's own resources)")

parameters = template.get("Parameters", {})
def parameter(name):
    if name in values:
        value = values[name]
    elif "Default" in parameters.get(name, {}):
        value = str(parameters[name]["Default"])
    else:
        raise LookupError(name)
    if parameters.get(name, {}).get("Type", "").startswith(("CommaDelimitedList", "List<")):
        return value.split(",")
    return value

conditions = template.get("Conditions", {})
def evaluate(node):
    if isinstance(node, dict) and len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            if arg == "AWS::Region":
                return region
            return parameter(arg)
        if fn == "Condition":
            return evaluate(conditions[arg])
        if fn == "Fn::Not":
            return not evaluate(arg[0])
        if fn == "Fn::And":
            return all(evaluate(a) for a in arg)
        if fn == "Fn::Or":
            return any(evaluate(a) for a in arg)
        if fn == "Fn::Equals":
            return str(evaluate(arg[0])) == str(evaluate(arg[1]))
        if fn == "Fn::Join":
            return arg[0].join(evaluate(arg[1]))
        raise LookupError(fn)
    if isinstance(node, list):
        return [evaluate(a) for a in node]
    return node

created, left_out, unknown = [], [], []
for name, resource in resources.items():
    condition = resource.get("Condition")
    if condition is None:
        created.append((resource["Type"], name, None))
        continue
    try:
        (created if evaluate(conditions[condition]) else left_out).append((resource["Type"], name, condition))
    except (LookupError, KeyError):
        unknown.append((resource["Type"], name, condition))
print(f"Resources the stack would create ({how}): {len(created)}")
for kind, name, condition in sorted(created, key=lambda r: r[:2]):
    print(f"  {kind:40} {name}" + (f" ({condition})" if condition else ""))
if left_out:
    print("Left out with these parameters:")
    for kind, name, condition in sorted(left_out):
        print(f"  {kind:40} {name} ({condition} is false)")
if unknown:
    print("Created or not depending on parameters the account decides:")
    for kind, name, condition in sorted(unknown):
        print(f"  {kind:40} {name} (if {condition})")
PY
  say "dry run (offline): nothing was deployed"
  exit 0
fi

# (d) Build, deploy, push.
sam_build
say "deploying the stack $stack"
sam_deploy --parameter-overrides ${overrides[@]+"${overrides[@]}"} "TableDeletionProtection=\"$protection\""
# At once: until a pipeline is in force, the functions refuse to start (their events wait in
# Lambda's retries).
say "pushing $pipeline to the stack (pipectl pipeline push)"
"$pipectl" pipeline push "$pipeline_path" --stack "$stack"
if [ "$protection" = false ]; then
  say "turning on the tables' deletion protection"
  sam_deploy --parameter-overrides ${overrides[@]+"${overrides[@]}"} 'TableDeletionProtection="true"'
fi

url=$(aws_read output "$stack" ApprovalPageUrl || true)
[ -n "$url" ] || url="(see the ApprovalPageUrl output: sam list stack-outputs --stack-name $stack)"
cat <<EOF

Deployed the stack $stack (account $account, region $region), with $pipeline in force.
  Approval page: $url

Left to do:
  - Subscribe the approvers the pipeline file names (each confirms from the mail AWS sends):
      $pipectl approvers sync --stack $stack
  - Subscribe the team to the NotificationsTopicArn output and the on-call address to
    OperationsTopicArn (sam list stack-outputs --stack-name $stack).
EOF
