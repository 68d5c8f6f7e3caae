//! A deployed stack, as CloudFormation describes it: its outputs name the tables, topics,
//! queue and functions the commands act on, and its parameters what the functions may reach.

use std::collections::BTreeMap;

pub struct Stack {
    pub name: String,
    outputs: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

impl Stack {
    pub async fn describe(aws: &aws_config::SdkConfig, name: &str) -> Result<Stack, String> {
        let described = aws_sdk_cloudformation::Client::new(aws)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| shared::adapters::describe_sdk_error("DescribeStacks", &e))?;
        let stack = described.stacks().first().ok_or_else(|| format!("no stack {name}"))?;
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let parameters = stack
            .parameters()
            .iter()
            .filter_map(|p| {
                let value = p.resolved_value().or(p.parameter_value())?;
                Some((p.parameter_key()?.to_owned(), value.to_owned()))
            })
            .collect();
        Ok(Stack {
            name: name.to_owned(),
            outputs,
            parameters,
        })
    }

    pub fn output(&self, key: &str) -> Result<&str, String> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            format!(
                "stack {} has no output {key}: deploy it with this version's template (scripts/deploy.sh)",
                self.name
            )
        })
    }

    /// A stack parameter's value, `None` if the template has no such parameter.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters.get(key).map(String::as_str)
    }
}

/// The output that names each of the stack's functions.
pub fn function_output(function: &str) -> String {
    let camel: String = function
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
        })
        .collect();
    format!("{camel}FunctionName")
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_function_is_named_by_an_output_of_its_camel_case_name() {
        assert_eq!(super::function_output("deploy-on-push"), "DeployOnPushFunctionName");
        assert_eq!(super::function_output("cost-report"), "CostReportFunctionName");
    }
}
